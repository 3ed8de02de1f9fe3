// The members of the routed cluster, as Envoy lists them, in the record one VM
// publishes in shared data for every VM of the vm_id (discovery.ts).
//
//   <ns>members_version  u64: publisher's VM tag << 32 | its sequence number
//   <ns>members          +0 host count u32 | +4 pad u32 | hosts:
//                        +0 state u8 | +1 address length u8 | address bytes
//
// The state is what the filter may do with the host (Member below); the
// address is Envoy's own text for it (ip:port, [ipv6]:port), the same text
// override_host matches the destination header against.
import { ByteSink } from "./bytes";
import { MAX_ADDRESS_BYTES } from "./limits";

export namespace Member {
  /** Not a member: a free endpoint slot. */
  export const Absent: u8 = 0;
  /** Envoy counts it healthy: pickable. */
  export const Healthy: u8 = 1;
  /** Degraded (EDS or active health check): picked only when no member is healthy. */
  export const Degraded: u8 = 2;
  /** Unhealthy, draining, ejected or on its way out: never picked, but its index is kept. */
  export const Excluded: u8 = 3;
}

const MEMBERS_COUNT: usize = 0;
export const MEMBERS_HEADER_BYTES: usize = 8;
const HOST_STATE: usize = 0;
const HOST_LENGTH: usize = 1;
const HOST_ADDRESS: usize = 2;

/** Builds a record in a bounded sink. */
@final
export class MemberRecordWriter {
  readonly sink: ByteSink;
  count: i32 = 0;
  /** Hosts left out because the record was full. */
  overflow: i32 = 0;

  constructor(readonly maxHosts: i32) {
    this.sink = new ByteSink(MEMBERS_HEADER_BYTES + <usize>maxHosts * (HOST_ADDRESS + MAX_ADDRESS_BYTES));
  }

  reset(): void {
    this.sink.reset();
    this.count = 0;
    this.overflow = 0;
    for (let i: usize = 0; i < MEMBERS_HEADER_BYTES; i++) this.sink.writeByte(0);
  }

  add(state: u8, address: usize, length: usize): void {
    if (this.count >= this.maxHosts) {
      this.overflow++;
      return;
    }
    this.sink.writeByte(state);
    this.sink.writeByte(<u32>length);
    this.sink.writeBytes(address, length);
    this.count++;
  }

  /** Writes the count into the header; the record is sink.ptr[0..sink.len). */
  finish(): void {
    store<u32>(this.sink.ptr + MEMBERS_COUNT, <u32>this.count);
  }

  free(): void {
    this.sink.free();
  }
}

/**
 * Walks a record. Bounds are checked on every step: shared data may hold a
 * record from another build of the module under the same vm_id.
 */
@final
export class MemberRecordReader {
  private p: usize = 0;
  private end: usize = 0;
  remaining: i32 = 0;
  state: u8 = Member.Absent;
  address: usize = 0;
  length: usize = 0;

  /** False when the record is malformed. */
  open(ptr: usize, size: usize): bool {
    if (size < MEMBERS_HEADER_BYTES) return false;
    this.p = ptr + MEMBERS_HEADER_BYTES;
    this.end = ptr + size;
    this.remaining = <i32>load<u32>(ptr + MEMBERS_COUNT);
    return this.remaining >= 0;
  }

  /** Moves to the next host; false at the end or on a malformed entry. */
  next(): bool {
    if (this.remaining <= 0 || this.p + HOST_ADDRESS > this.end) return false;
    const state = load<u8>(this.p + HOST_STATE);
    const length = <usize>load<u8>(this.p + HOST_LENGTH);
    if (this.p + HOST_ADDRESS + length > this.end || length == 0 || state == Member.Absent || state > Member.Excluded) return false;
    this.state = state;
    this.address = this.p + HOST_ADDRESS;
    this.length = length;
    this.p += HOST_ADDRESS + length;
    this.remaining--;
    return true;
  }
}
