/** Per-key debouncing, on mocked timers. */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { KeyedDebouncer } from '../../src/debounce';

test('each key fires once, after the last schedule; keys are independent', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const fired: string[] = [];
    const debouncer = new KeyedDebouncer<string>(200, (key) => fired.push(key));
    debouncer.schedule('a');
    mock.timers.tick(150);
    debouncer.schedule('a');
    debouncer.schedule('b');
    mock.timers.tick(150);
    assert.deepEqual(fired, []);
    mock.timers.tick(50);
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(debouncer.pending, 0);
    debouncer.schedule('c');
    debouncer.dispose();
    mock.timers.tick(1000);
    assert.deepEqual(fired, ['a', 'b']);
  } finally {
    mock.timers.reset();
  }
});

test('flush fires a pending key at once and only once; a key not pending is not fired', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const fired: string[] = [];
    const debouncer = new KeyedDebouncer<string>(200, (key) => fired.push(key));
    debouncer.schedule('a');
    debouncer.schedule('b');
    debouncer.flush('a');
    assert.deepEqual(fired, ['a']);
    debouncer.flush('a');
    debouncer.flush('never');
    mock.timers.tick(1000);
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(debouncer.pending, 0);
  } finally {
    mock.timers.reset();
  }
});
