// A value one VM publishes in shared data for every VM of the vm_id, with a
// version key beside it, so that readers poll 8 bytes per tick and copy the
// value only when it changed: the load snapshot (scraper.ts) and the
// membership record (discovery.ts).
//
//   <versionKey>  u64: the publisher's VM tag << 32 | its sequence number
//   <valueKey>    the value
//
// The value is written before its version, so a reader that sees a new
// version reads a value at least that new.
import * as host from "../abi/host";
import { WasmResult } from "../abi/enums";
import { HostBuffer } from "../abi/memory";

@final
export class PublishedValue {
  private valueKey: ArrayBuffer;
  private versionKey: ArrayBuffer;
  private versionBytes: usize = heap.alloc(8);
  private buf: HostBuffer = new HostBuffer();
  private published: u64 = 0;
  private readVersion: u64 = u64.MAX_VALUE;

  constructor(valueKey: string, versionKey: string, private vmTag: u32) {
    this.valueKey = String.UTF8.encode(valueKey);
    this.versionKey = String.UTF8.encode(versionKey);
  }

  /** Writes [ptr, ptr+len) as the new value, then its new version. */
  publish(ptr: usize, len: usize): void {
    this.published++;
    store<u64>(this.versionBytes, (<u64>this.vmTag << 32) | (this.published & 0xFFFFFFFF));
    host.setSharedData(changetype<usize>(this.valueKey), this.valueKey.byteLength, ptr, len, 0);
    host.setSharedData(changetype<usize>(this.versionKey), this.versionKey.byteLength, this.versionBytes, 8, 0);
  }

  /** This VM's next version number (the low half of the version). */
  get nextVersion(): u64 { return this.published + 1; }

  /** Whether the value last read is one this VM published (its version carries the publisher's tag). */
  lastReadIsOwn(): bool {
    return this.readVersion != u64.MAX_VALUE && <u32>(this.readVersion >> 32) == this.vmTag;
  }

  /** Reads the value into `into` (released first) when its version changed since the last read; true if it did. */
  readIfChanged(into: HostBuffer): bool {
    if (host.getSharedData(changetype<usize>(this.versionKey), this.versionKey.byteLength, this.buf) != WasmResult.Ok ||
        this.buf.size != 8) {
      this.buf.release();
      return false;
    }
    const version = load<u64>(this.buf.ptr);
    this.buf.release();
    if (version == this.readVersion) return false;
    into.release();
    if (host.getSharedData(changetype<usize>(this.valueKey), this.valueKey.byteLength, into) != WasmResult.Ok) {
      into.release();
      return false;
    }
    this.readVersion = version;
    return true;
  }

  free(): void {
    heap.free(this.versionBytes);
    this.versionBytes = 0;
    this.buf.release();
  }
}
