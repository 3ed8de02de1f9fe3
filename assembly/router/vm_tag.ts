// A tag that tells this VM's journal events apart from every other VM's.
//
// Tags come from a counter in shared data incremented by CAS, so two VMs can
// never draw the same one once the counter exists. Creating it is the one step
// the ABI cannot make atomic (a missing key is always set, whatever the cas,
// ENVOY_HOST.md §5); every creator writes the same 0, so racing creators agree
// and the increments that follow are all CAS-checked.
import * as host from "../abi/host";
import { WasmResult } from "../abi/enums";
import { HostBuffer } from "../abi/memory";

export namespace VmTags {
  export function claim(namespace: string): u32 {
    const key = String.UTF8.encode(namespace + "vm_tags");
    const buf = new HostBuffer();
    const value = memory.data(8);
    for (let attempt = 0; attempt < 64; attempt++) {
      const status = host.getSharedData(changetype<usize>(key), key.byteLength, buf);
      if (status != WasmResult.Ok || buf.size != 8) {
        buf.release();
        store<u64>(value, 0);
        host.setSharedData(changetype<usize>(key), key.byteLength, value, 8, 0);
        continue;
      }
      const cas = buf.cas;
      const next = load<u64>(buf.ptr) + 1;
      buf.release();
      store<u64>(value, next);
      if (host.setSharedData(changetype<usize>(key), key.byteLength, value, 8, cas) == WasmResult.Ok) {
        // Tag 0 is never handed out, so 0 can mean "none".
        return <u32>next;
      }
    }
    // Contention this heavy at start-up is not expected; fall back to the clock,
    // which differs between VMs started at different instants.
    return (<u32>host.nowNanos() & 0x7FFFFFFF) | 1; // never PEER_TAG (journal.ts)
  }
}
