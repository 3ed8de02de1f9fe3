// AssemblyScript's abort(), routed to proxy_log instead of the env.abort import
// Envoy does not provide (ENVOY_HOST.md §1.1). asconfig.json wires it in with
// `--use abort=…`. It must trap afterwards: an abort means a broken invariant,
// and Envoy then fails the VM as for any trap (cpp-host src/v8/v8.cc `fail`).
import { proxy_log } from "./imports";
import { LogLevel } from "./enums";

// @ts-ignore: decorator
@global
export function abortViaProxyLog(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "prefix-router abort: " + (message !== null ? message : "(no message)");
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const utf8 = String.UTF8.encode(text);
  proxy_log(LogLevel.Critical, changetype<usize>(utf8), utf8.byteLength);
  unreachable();
}
