//! The languages' own parsers as judges, for the classify benches: small Python and Node
//! programs that read texts framed as `LENGTH\nTEXT` on stdin and answer one line each,
//! `ok` or `err LINE MESSAGE`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub const PY_HELPER: &str = r#"
import sys, json, warnings
warnings.simplefilter("ignore")
inp = sys.stdin.buffer
mode = sys.argv[1]
while True:
    header = inp.readline()
    if not header:
        break
    src = inp.read(int(header))
    try:
        if mode == "python":
            compile(src, "f.py", "exec", dont_inherit=True)
        else:
            json.loads(src.decode("utf-8"))
        out = "ok"
    except SyntaxError as e:
        out = "err %d %s" % (e.lineno or 0, e.msg)
    except ValueError as e:
        out = "err %d %s" % (getattr(e, "lineno", 0), getattr(e, "msg", str(e)))
    except Exception as e:
        out = "err 0"
    sys.stdout.write(out + "\n")
    sys.stdout.flush()
"#;

pub const JS_HELPER: &str = r#"
const vm = require("vm");
let buf = Buffer.alloc(0);
function check(src) {
  const line = (e) => {
    const m = /^f\.js:(\d+)/.exec(String(e.stack || ""));
    return m ? Number(m[1]) : 0;
  };
  try { new vm.Script(src, { filename: "f.js" }); return "ok"; } catch (e) {
    if (!(e instanceof SyntaxError)) return "ok";
    try { new vm.SourceTextModule(src, { identifier: "f.js" }); return "ok"; } catch (e2) {
      try { new Function(src); } catch (e3) {}
      const l1 = line(e), l2 = line(e2);
      return "err " + (l2 || l1) + " " + String((l2 ? e2 : e).message).split("\n")[0];
    }
  }
}
process.stdin.on("data", (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const nl = buf.indexOf(10);
    if (nl < 0) return;
    const len = Number(buf.subarray(0, nl).toString());
    if (buf.length < nl + 1 + len) return;
    const src = buf.subarray(nl + 1, nl + 1 + len).toString("utf8");
    buf = buf.subarray(nl + 1 + len);
    process.stdout.write(check(src) + "\n");
  }
});
"#;

/// TypeScript's own parser (syntax only, no type check), from the `typescript` package named by
/// `ACAS_EVAL_TYPESCRIPT` (for example a temp dir where `npm install typescript` ran): there is
/// no `tsc` on this machine. argv[2] is `ts` or `tsx`.
pub const TS_HELPER: &str = r#"
const ts = require(process.env.ACAS_EVAL_TYPESCRIPT);
const tsx = process.argv[2] === "tsx";
let buf = Buffer.alloc(0);
function check(src) {
  const sf = ts.createSourceFile(tsx ? "f.tsx" : "f.ts", src, ts.ScriptTarget.Latest, true,
    tsx ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const d = sf.parseDiagnostics || [];
  if (d.length === 0) return "ok";
  return "err " + (sf.getLineAndCharacterOfPosition(d[0].start).line + 1) + " " +
    ts.flattenDiagnosticMessageText(d[0].messageText, " ");
}
process.stdin.on("data", (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const nl = buf.indexOf(10);
    if (nl < 0) return;
    const len = Number(buf.subarray(0, nl).toString());
    if (buf.length < nl + 1 + len) return;
    const src = buf.subarray(nl + 1, nl + 1 + len).toString("utf8");
    buf = buf.subarray(nl + 1 + len);
    process.stdout.write(check(src) + "\n");
  }
});
"#;

/// A judge process, stopped when dropped.
pub struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    /// Writes `script` to a temporary file named `script_name` and runs `program` on it: the
    /// arguments that start with `--` go before the script, the others after it.
    pub fn start(program: &Path, script_name: &str, script: &str, args: &[&str]) -> Option<Helper> {
        let path = std::env::temp_dir().join(script_name);
        std::fs::write(&path, script).ok()?;
        let mut child = Command::new(program)
            .args(args.iter().take_while(|a| a.starts_with("--")))
            .arg(&path)
            .args(args.iter().skip_while(|a| a.starts_with("--")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(Helper { child, stdin, stdout })
    }

    /// `Some(None)`: accepted; `Some(Some((line, message)))`: rejected at `line` (1-based, 0 if
    /// unknown); `None`: the judge failed.
    pub fn check(&mut self, text: &str) -> Option<Option<(i64, String)>> {
        writeln!(self.stdin, "{}", text.len()).ok()?;
        self.stdin.write_all(text.as_bytes()).ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let line = line.trim();
        if line == "ok" {
            return Some(None);
        }
        let rest = line.strip_prefix("err")?.trim_start();
        let (number, message) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(Some((number.parse().unwrap_or(0), message.to_string())))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
