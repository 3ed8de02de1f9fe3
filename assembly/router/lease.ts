// A lease in shared data that elects one VM of the vm_id for a periodic job
// (scraping the model servers, polling Envoy's endpoint list), however many
// worker threads Envoy runs.
//
//   <key>: +0 holder tag u32 | +4 pad u32 | +8 expiry ms i64 (monotonic)
//
// Taken by CAS when free or expired and renewed each period by its holder; if
// the holder stops (trap, shutdown), the lease expires and another VM's tick
// takes it.
import * as host from "../abi/host";
import { WasmResult } from "../abi/enums";
import { HostBuffer } from "../abi/memory";

const LEASE_HOLDER: usize = 0;
const LEASE_PAD: usize = 4;
const LEASE_EXPIRY: usize = 8;
const LEASE_BYTES: usize = 16;

@final
export class Lease {
  private key: ArrayBuffer;
  private buf: HostBuffer = new HostBuffer();
  private scratch: usize = heap.alloc(LEASE_BYTES);

  constructor(key: string, readonly vmTag: u32) {
    this.key = String.UTF8.encode(key);
  }

  /** Takes or renews the lease until `expiresAtMs`; true when this VM holds it. */
  acquire(now: i64, expiresAtMs: i64): bool {
    const key = changetype<usize>(this.key);
    const keyLen = <usize>this.key.byteLength;
    let cas: u32 = 0;
    if (host.getSharedData(key, keyLen, this.buf) == WasmResult.Ok && this.buf.size == LEASE_BYTES) {
      const holder = load<u32>(this.buf.ptr + LEASE_HOLDER);
      const expires = load<i64>(this.buf.ptr + LEASE_EXPIRY);
      cas = this.buf.cas;
      this.buf.release();
      if (holder != this.vmTag && now < expires) return false;
    }
    this.buf.release();
    store<u32>(this.scratch + LEASE_HOLDER, this.vmTag);
    store<u32>(this.scratch + LEASE_PAD, 0);
    store<i64>(this.scratch + LEASE_EXPIRY, expiresAtMs);
    if (host.setSharedData(key, keyLen, this.scratch, LEASE_BYTES, cas) != WasmResult.Ok) return false;
    // Confirm: a missing lease key accepts any writer, so two first-takers could both succeed.
    const mine = host.getSharedData(key, keyLen, this.buf) == WasmResult.Ok && this.buf.size == LEASE_BYTES &&
      load<u32>(this.buf.ptr + LEASE_HOLDER) == this.vmTag;
    this.buf.release();
    return mine;
  }

  free(): void {
    heap.free(this.scratch);
    this.scratch = 0;
    this.buf.release();
  }
}
