// What the benchmarks read about a process and the machine from /proc (Linux
// only, proc(5)): a process's CPU time and resident memory, and the facts a
// report must print so its figures can be judged (cores, CPU model, memory,
// kernel). Owns: those readers. Must not: start or stop anything.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";

/** Clock ticks per second, the unit of utime and stime in /proc/<pid>/stat. */
export function clockTicksPerSecond(): number {
  return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
}

/** A process's CPU time so far, in seconds: utime + stime, fields 14 and 15 of /proc/<pid>/stat, all threads. */
export async function cpuSeconds(pid: number, ticksPerSecond: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** A process's resident set size in bytes: VmRSS of /proc/<pid>/status (reported in kB, i.e. KiB). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match === null) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(match[1]) * 1024;
}

export interface MachineFacts {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
}

export function machineFacts(): MachineFacts {
  const info = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1] ?? cpus()[0]?.model ?? "unknown";
  return {
    cores: cpus().length,
    cpuModel: model.trim(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
}

/**
 * Busy and total CPU seconds of the whole machine so far, from the first line
 * of /proc/stat (user nice system idle iowait irq softirq steal, in clock
 * ticks); idle and iowait are the idle part. Two readings give the share of
 * all cores that was busy between them.
 */
export async function machineCpuSeconds(ticksPerSecond: number): Promise<{ busy: number; total: number }> {
  const first = (await readFile("/proc/stat", "utf8")).split("\n")[0];
  const [user, nice, system, idle, iowait, irq, softirq, steal] = first.trim().split(/\s+/).slice(1, 9).map(Number);
  const busy = user + nice + system + irq + softirq + (steal || 0);
  return { busy: busy / ticksPerSecond, total: (busy + idle + iowait) / ticksPerSecond };
}
