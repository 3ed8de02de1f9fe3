// §5: shared data. Keyed by the vm_id string across every VM and plugin of the
// Envoy; missing key NotFound; cas 0 unconditional; a missing key is always
// written; one process-wide cas counter from 1. The onBeforeSharedDataSet hook
// lets a test run another VM between one VM's get and set: a real race, with a
// lost update when the key is new (cas 0) and a CasMismatch when it exists.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock, WasmResult } from "../../scripts/host/index.ts";
import { SharedDataStore } from "../../scripts/host/shared-data.ts";
import { probePath, put, request, slots, u32At } from "./helpers.ts";

const counter = (envoy: Envoy, vmId: string) => {
  const e = envoy.sharedData(vmId).get("probe.count");
  return e === undefined ? undefined : Number(new DataView(e.value.buffer, e.value.byteOffset, 8).getBigUint64(0, true));
};

/** The probe counts a /stop request once its body is complete (allow mode: no tick needed). */
function countedRequest(plugin: Awaited<ReturnType<Envoy["addHttpFilter"]>>, worker: number): string | undefined {
  const s = plugin.newStream(worker);
  s.sendRequestHeaders(request("/stop"), false);
  s.sendRequestBody("x", true);
  return new Map(s.upstreamRequest?.headers ?? []).get("x-probe-count");
}

async function probes(envoy: Envoy, ...plugins: { name: string; vmId: string; vmConfiguration?: string; concurrency?: number }[]) {
  const out = [];
  for (const p of plugins) out.push(await envoy.addHttpFilter({ rootId: "r", wasm: probePath(), allowOnHeadersStopIteration: true, ...p }));
  return out;
}

describe("shared data", () => {
  test("get/set semantics: NotFound, cas 0 unconditional, stale cas CasMismatch, a missing key is always written", async () => {
    const envoy = new Envoy({ clock: new VirtualClock() });
    const [plugin] = await probes(envoy, { name: "p", vmId: "v" });
    const vm = plugin.vms[0];
    const out = slots(vm);
    const cas = vm.alloc(4);
    const key = put(vm, "k");
    const get = () => vm.hostCall("proxy_get_shared_data", [...key, out.ptr, out.size, cas], 1);
    const set = (value: string, c: number) => vm.hostCall("proxy_set_shared_data", [...key, ...put(vm, value), c], 1);

    assert.equal(get(), WasmResult.NotFound);
    assert.equal(set("a", 0), WasmResult.Ok);
    assert.equal(get(), WasmResult.Ok);
    const c1 = u32At(vm, cas);
    assert.equal(c1, 1, "the first write in this Envoy gets cas 1");
    assert.equal(set("b", c1 + 7), WasmResult.CasMismatch);
    assert.equal(set("b", c1), WasmResult.Ok);
    assert.equal(set("c", c1), WasmResult.CasMismatch, "the cas moved on");
    assert.equal(set("c", 0), WasmResult.Ok, "cas 0 writes unconditionally");
    get();
    assert.equal(u32At(vm, cas), 3);
    assert.equal(new TextDecoder().decode(out.read()), "c");

    const fresh = put(vm, "never-written");
    assert.equal(vm.hostCall("proxy_set_shared_data", [...fresh, ...put(vm, "x"), 12345], 1), WasmResult.Ok, "missing key: any cas writes");
    const empty = put(vm, "empty");
    vm.hostCall("proxy_set_shared_data", [...empty, 0, 0, 0], 1);
    assert.equal(vm.hostCall("proxy_get_shared_data", [...empty, out.ptr, out.size, cas], 1), WasmResult.Ok);
    assert.deepEqual([out.ptrValue(), out.sizeValue()], [0, 0]);
    envoy.shutdown();
  });

  test("the cas counter skips 0 when it wraps", () => {
    const store = new SharedDataStore(0xffffffff);
    const v = new Uint8Array([1]);
    store.set("vm", "a", v, 0);
    store.set("vm", "b", v, 0);
    assert.deepEqual([store.get("vm", "a")!.cas, store.get("vm", "b")!.cas], [0xffffffff, 1]);
  });

  test("one map per vm_id across VMs and plugins; one cas counter for the whole process", async () => {
    const envoy = new Envoy({ clock: new VirtualClock() });
    const [a, b, c] = await probes(
      envoy,
      { name: "a", vmId: "shared", concurrency: 2 },
      { name: "b", vmId: "shared", vmConfiguration: "other code config: separate VMs" },
      { name: "c", vmId: "elsewhere" },
    );
    assert.notEqual(a.vms[0], b.vms[0], "different vm_key: different VMs");
    assert.equal(countedRequest(a, 0), "1");
    assert.equal(countedRequest(a, 1), "2");
    assert.equal(countedRequest(b, 0), "3");
    assert.equal(countedRequest(c, 0), "1", "another vm_id has its own map");
    assert.equal(counter(envoy, "shared"), 3);
    assert.equal(counter(envoy, "elsewhere"), 1);
    assert.deepEqual(envoy.sharedData("shared").keys(), ["probe.count"]);
    assert.equal(envoy.sharedData("shared").totalBytes(), "probe.count".length + 8);
    // Four writes so far in the process: the cas values are 1..4 whatever the vm_id.
    assert.deepEqual([envoy.sharedData("shared").get("probe.count")!.cas, envoy.sharedData("elsewhere").get("probe.count")!.cas], [3, 4]);
    envoy.shutdown();
  });

  test("interleaving two VMs between get and set: a new key loses an update (cas 0), an existing key gets CasMismatch and the retry wins", async () => {
    const envoy = new Envoy({ clock: new VirtualClock(), logLevel: "trace" });
    const [plugin] = await probes(envoy, { name: "p", vmId: "race", concurrency: 2 });
    const other: (string | undefined)[] = [];
    let interleave = true;
    envoy.onBeforeSharedDataSet = (vmIndex, key) => {
      if (vmIndex !== 0 || key !== "probe.count" || !interleave) return;
      interleave = false;
      other.push(countedRequest(plugin, 1)); // worker 1 runs a whole request meanwhile
    };

    // The key does not exist: both VMs read NotFound and write with cas 0.
    assert.equal(countedRequest(plugin, 0), "1");
    assert.deepEqual(other, ["1"]);
    assert.equal(counter(envoy, "race"), 1, "two increments, one lost");

    // The key exists: worker 0's write carries a stale cas.
    interleave = true;
    assert.equal(countedRequest(plugin, 0), "3");
    assert.deepEqual(other, ["1", "2"]);
    assert.equal(counter(envoy, "race"), 3);
    const setResults = envoy.logs.filter((l) => l.vm === 0 && l.message.startsWith("[vm<-host] env.proxy_set_shared_data return:")).map((l) => l.message.split(": ")[1]);
    assert.deepEqual(setResults, ["0", String(WasmResult.CasMismatch), "0"]);
    envoy.shutdown();
  });
});
