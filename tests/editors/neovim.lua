-- Drives `acas serve` through Neovim's own LSP client, set up by a user's configuration (the
-- README's for Neovim 0.7: `vim.lsp.start_client` and `vim.lsp.buf_attach_client`).
--
-- Run as `nvim --headless --clean -u neovim.lua`. Reads from the environment:
--   ACAS_NVIM_CONFIG  the user's configuration, which starts `acas serve` (found on PATH)
--   ACAS_NVIM_ROOT    the workspace (src/main.rs, .acas/workflows/{hello,broken}.yaml); Neovim
--                     runs in it
--   ACAS_NVIM_RESULT  where to write the JSON report
--   ACAS_NVIM_WAIT_MS how long any one wait may last
-- Every step is reported with what it saw; the first step that fails ends the script (the later
-- ones depend on it). Nothing here sleeps: each wait polls a condition with `vim.wait`, bounded.
-- The handlers that record what the server sent are Neovim's global ones, and the only change to
-- the clients the configuration starts is an `on_exit` that notes how the server exited.

local config = assert(vim.env.ACAS_NVIM_CONFIG, 'ACAS_NVIM_CONFIG is not set')
local root = assert(vim.env.ACAS_NVIM_ROOT, 'ACAS_NVIM_ROOT is not set')
local result_path = assert(vim.env.ACAS_NVIM_RESULT, 'ACAS_NVIM_RESULT is not set')
local WAIT_MS = tonumber(vim.env.ACAS_NVIM_WAIT_MS or '30000')

local report = { steps = {} }
local published = {} -- uri -> every publishDiagnostics params received, in order
local workflow_runs = {} -- every acas/workflowRun params received
local escalations_done = {} -- every acas/escalationDone params received
local messages = {} -- window/showMessage and window/logMessage params
local commands = {} -- responses to workspace/executeCommand, in order: { err =, result = }
local exited = nil

local function write_report()
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode(report))
  file:close()
end

-- Runs one step; returns false when it failed (its error is reported with a traceback).
local function step(name, fn)
  local entry = { name = name }
  table.insert(report.steps, entry)
  local ok, err = xpcall(function()
    entry.saw = fn()
  end, debug.traceback)
  entry.ok = ok
  if not ok then
    entry.error = tostring(err)
  end
  return ok
end

-- What the server last published for the buffer, for messages about a wait that timed out.
local last_seen = function()
  return ''
end

-- Polls `condition` until it returns a value other than nil/false, at most WAIT_MS.
local function wait_for(what, condition)
  local value
  local done = vim.wait(WAIT_MS, function()
    value = condition()
    return value ~= nil and value ~= false
  end, 10)
  if not done then
    error(string.format('timed out after %d ms waiting for %s%s', WAIT_MS, what, last_seen()), 2)
  end
  return value
end

local function check(condition, message, ...)
  if not condition then
    error(string.format(message, ...), 2)
  end
end

local function record(list)
  return function(_, result)
    table.insert(list, result)
  end
end

local handlers = {
  ['textDocument/publishDiagnostics'] = function(err, result, ctx, handler_config)
    published[result.uri] = published[result.uri] or {}
    table.insert(published[result.uri], result)
    return vim.lsp.diagnostic.on_publish_diagnostics(err, result, ctx, handler_config)
  end,
  ['workspace/executeCommand'] = function(err, result)
    table.insert(commands, { err = err, result = result })
  end,
  ['acas/workflowRun'] = record(workflow_runs),
  ['acas/escalationDone'] = record(escalations_done),
  ['window/showMessage'] = record(messages),
  ['window/logMessage'] = record(messages),
}

-- Every message both ways goes to Neovim's LSP log, which the test shows when a step fails.
vim.lsp.set_log_level('debug')

for method, handler in pairs(handlers) do
  vim.lsp.handlers[method] = handler
end

-- The clients the configuration starts, with how they were started.
local started = {}
local start_client = vim.lsp.start_client
vim.lsp.start_client = function(client_config)
  client_config.on_exit = function(code, signal)
    exited = { code = code, signal = signal }
  end
  local id = start_client(client_config)
  table.insert(started, { id = id, cmd = client_config.cmd, root_dir = client_config.root_dir })
  return id
end

local client_id
local bufnr
local source = root .. '/src/main.rs'
local uri = vim.uri_from_fname(source)

local function client()
  return vim.lsp.get_client_by_id(client_id)
end

-- The current text of the buffer, lines joined with "\n" and a final newline.
local function buffer_text()
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n') .. '\n'
end

-- The last diagnostics published for the buffer's current version, or nil until they arrive.
local function current_publication()
  local list = published[uri] or {}
  local last = list[#list]
  if last and last.version == vim.lsp.util.buf_versions[bufnr] then
    return last
  end
  return nil
end

last_seen = function()
  local list = bufnr and published[uri] or {}
  return string.format('; buffer version %s, text %q, last diagnostics published: %s',
    tostring(bufnr and vim.lsp.util.buf_versions[bufnr]), bufnr and buffer_text() or '', vim.inspect(list[#list]))
end

local function of_source(diagnostics, source_name)
  return vim.tbl_filter(function(d)
    return d.source == source_name
  end, diagnostics)
end

-- Sends workspace/executeCommand through the client, the way Neovim runs a code action's command,
-- and waits for its response.
local function execute(command)
  local before = #commands
  client().request('workspace/executeCommand', {
    command = command.command,
    arguments = command.arguments,
  }, nil, bufnr)
  return wait_for('the response to ' .. command.command, function()
    return commands[before + 1]
  end)
end

-- The code actions Neovim 0.7's `vim.lsp.buf.code_action()` asks for at the cursor: the cursor's
-- range, and the line's diagnostics as `vim.lsp.diagnostic.get_line_diagnostics` gives them.
local function code_actions()
  local params = vim.lsp.util.make_range_params()
  params.context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(bufnr) }
  local response, err = client().request_sync('textDocument/codeAction', params, WAIT_MS, bufnr)
  check(response, 'textDocument/codeAction failed: %s', tostring(err))
  check(not response.err, 'textDocument/codeAction answered an error: %s', vim.inspect(response.err))
  return params, response.result or {}
end

local function titles(actions)
  return vim.tbl_map(function(a)
    return a.title
  end, actions)
end

local function find_action(actions, prefix)
  for _, action in ipairs(actions) do
    if vim.startswith(action.title, prefix) then
      return action
    end
  end
  return nil
end

local function run()
  report.nvim = vim.version()

  -- Opening the file is all it takes: the configuration starts the server and attaches it.
  local ok = step('start', function()
    vim.cmd('edit ' .. vim.fn.fnameescape(source))
    bufnr = vim.api.nvim_get_current_buf()
    local attached = wait_for('a client attached to the buffer', function()
      return next(vim.lsp.buf_get_clients(bufnr)) and vim.lsp.buf_get_clients(bufnr)
    end)
    client_id = select(1, next(attached))
    wait_for('the client to initialize', function()
      return client() and client().initialized
    end)
    local caps = client().server_capabilities
    return {
      started = started,
      name = client().name,
      filetype = vim.bo[bufnr].filetype,
      offset_encoding = client().offset_encoding,
      commands = caps.executeCommandProvider and caps.executeCommandProvider.commands,
      position_encoding = caps.positionEncoding,
    }
  end)

  -- The file opens with an unclosed call on a line whose text before it is not ASCII.
  ok = ok and step('diagnostics on open', function()
    local publication = wait_for('diagnostics for the opened file', current_publication)
    local own = of_source(publication.diagnostics, 'acas')
    check(#own > 0, 'no acas diagnostic on open: %s', vim.inspect(publication))
    return {
      version = publication.version,
      diagnostics = publication.diagnostics,
      vim_diagnostics = vim.diagnostic.get(bufnr),
      line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1],
    }
  end)

  -- Close the call: Neovim sends an incremental change whose columns count the accented letters.
  ok = ok and step('edit fixes the error', function()
    local line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
    local at = assert(line:find('foo(s;', 1, true)) + #'foo(s' - 1
    vim.api.nvim_buf_set_text(bufnr, 1, at, 1, at, { ')' })
    local publication = wait_for('diagnostics after the edit', function()
      local p = current_publication()
      return p and #of_source(p.diagnostics, 'acas') == 0 and p
    end)
    return { version = publication.version, text = buffer_text(), diagnostics = publication.diagnostics }
  end)

  ok = ok and step('edit breaks it again', function()
    local line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
    local at = assert(line:find('foo(s);', 1, true)) + #'foo(s' - 1
    vim.api.nvim_buf_set_text(bufnr, 1, at, 1, at + 1, { '' })
    local publication = wait_for('diagnostics after the second edit', function()
      local p = current_publication()
      return p and #of_source(p.diagnostics, 'acas') > 0 and p
    end)
    return { version = publication.version, text = buffer_text(), diagnostics = publication.diagnostics }
  end)

  -- "Explain and fix with AI", asked for and run as Neovim 0.7's code action menu does.
  local escalate_action
  ok = ok and step('explain action offered', function()
    local diagnostic = of_source(vim.diagnostic.get(bufnr), 'acas')[1]
    vim.api.nvim_win_set_cursor(0, { diagnostic.lnum + 1, diagnostic.col })
    local params, actions = code_actions()
    escalate_action = find_action(actions, 'Explain and fix with AI')
    check(escalate_action, 'no "Explain and fix with AI" among %s', vim.inspect(titles(actions)))
    return { sent = params, titles = titles(actions), action = escalate_action }
  end)

  ok = ok and step('explain runs', function()
    local command = escalate_action.command
    local response = execute(command)
    check(not response.err, '%s answered an error: %s', command.command, vim.inspect(response.err))
    -- The explanation arrives as an acas-ai diagnostic, with the response or after it.
    local ai = wait_for('an acas-ai diagnostic', function()
      local failed = vim.tbl_filter(function(done)
        return done.error ~= nil
      end, escalations_done)
      check(#failed == 0, 'the escalation failed: %s', vim.inspect(failed))
      return of_source(vim.diagnostic.get(bufnr), 'acas-ai')[1]
    end)
    return { response = response.result, ai = ai, done = escalations_done }
  end)

  local fix_action
  ok = ok and step('quick fix offered', function()
    local ai = of_source(vim.diagnostic.get(bufnr), 'acas-ai')[1]
    vim.api.nvim_win_set_cursor(0, { ai.lnum + 1, ai.col })
    local params, actions = code_actions()
    fix_action = find_action(actions, 'Apply AI fix')
    check(fix_action, 'no "Apply AI fix" among %s', vim.inspect(titles(actions)))
    return { sent = params, titles = titles(actions), action = fix_action }
  end)

  ok = ok and step('quick fix applied', function()
    vim.lsp.util.apply_workspace_edit(fix_action.edit, client().offset_encoding)
    local text = buffer_text()
    local response = execute(fix_action.command)
    check(not response.err, '%s answered an error: %s', fix_action.command.command, vim.inspect(response.err))
    local publication = wait_for('no diagnostics after the fix', function()
      local p = current_publication()
      return p and #p.diagnostics == 0 and p
    end)
    return { text = text, response = response.result, version = publication.version }
  end)

  -- A workflow started from workspace/executeCommand, followed to its end.
  ok = ok and step('workflow runs', function()
    local response = execute({
      command = 'acas.workflow.run',
      arguments = { { workflow = 'hello', inputs = { who = 'nvim' } } },
    })
    check(not response.err, 'acas.workflow.run answered an error: %s', vim.inspect(response.err))
    local run_id = response.result and response.result.runId
    check(run_id, 'acas.workflow.run answered no runId: %s', vim.inspect(response.result))
    local finished = wait_for('the end of the run', function()
      for _, run in ipairs(workflow_runs) do
        if run.runId == run_id and vim.tbl_contains({ 'succeeded', 'failed', 'cancelled' }, run.status) then
          return run
        end
      end
    end)
    local greeting = io.open(root .. '/greeting.txt')
    local written = greeting and greeting:read('*a')
    if greeting then
      greeting:close()
    end
    return { run_id = run_id, finished = finished, greeting = written }
  end)

  -- A workflow file is a YAML buffer: the configuration attaches the server to it too, and the
  -- server publishes its problems for the open document.
  ok = ok and step('workflow file diagnostics', function()
    local path = root .. '/.acas/workflows/broken.yaml'
    vim.cmd('edit ' .. vim.fn.fnameescape(path))
    local buf = vim.api.nvim_get_current_buf()
    local workflow_uri = vim.uri_from_fname(path)
    local publication = wait_for('diagnostics for the open workflow file', function()
      local list = published[workflow_uri] or {}
      local last = list[#list]
      return last and last.version == vim.lsp.util.buf_versions[buf] and #last.diagnostics > 0 and last
    end)
    return {
      filetype = vim.bo[buf].filetype,
      attached = vim.tbl_keys(vim.lsp.buf_get_clients(buf)),
      version = publication.version,
      diagnostics = publication.diagnostics,
    }
  end)

  -- Always stop the server, so that the report says how it exited.
  step('stop', function()
    if client_id and client() then
      client().stop()
      wait_for('the server to exit', function()
        return exited
      end)
    end
    return { exited = exited, messages = messages }
  end)
end

local function main()
  local ok, err = xpcall(run, debug.traceback)
  if not ok then
    report.error = tostring(err)
  end
  write_report()
  vim.cmd('qall!')
end

-- Outside any autocommand, so that opening the file runs the FileType ones as it does for a user.
vim.api.nvim_create_autocmd('VimEnter', {
  callback = function()
    vim.schedule(main)
  end,
  once = true,
})

dofile(config)
