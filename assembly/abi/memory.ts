// Memory the host hands to the module.
//
// The host copies every returned buffer into memory it obtains from our exported
// `malloc`, then writes (ptr, size) through two return pointers (cpp-host
// include/proxy-wasm/wasm.h `copyToPointerSize`). The module owns that memory and
// must free it. We allocate it straight from the TLSF heap (heap.alloc), outside
// the garbage collector: the buffers are read in place and freed right after, so
// no GC object, pin or copy is involved on the per-request path.

// Large buffers (a request body, above all: every decision reads one) are
// allocated in whole pages of SPARE_PAGE bytes, and the last one released is
// kept for the next: a body then costs the heap nothing, where a fresh TLSF
// block for it and its free showed in the profile's allocator share
// (reports/profile-router.md). A kept block is
// known to hold at least its size rounded up to a page, so it is reused for
// anything no larger; at most SPARE_MAX bytes are kept.
const SPARE_MIN: usize = 4096;
const SPARE_PAGE: usize = 4096;
const SPARE_MAX: usize = 1 << 20;
let spare: usize = 0;
let spareCapacity: usize = 0;

// Small buffers (the request's header pairs, a shared-data value, each other
// VM's journal event: several per decision, one after another) all get a
// block of SPARE_MIN bytes, and the last one released is kept for the next,
// so that reading them costs the heap no allocation and no free (with 8
// worker VMs, 10.9 to 10.7 µs a decision side by side, `npm run bench:ab`).
let smallSpare: usize = 0;

// @ts-ignore: decorator
@inline function pageRounded(size: usize): usize {
  return (size + SPARE_PAGE - 1) & ~(SPARE_PAGE - 1);
}

/** Exported as `malloc`: cpp-host looks this name up before proxy_on_memory_allocate. */
export function malloc(size: usize): usize {
  if (size >= SPARE_MIN) {
    if (spare != 0 && size <= spareCapacity) {
      const p = spare;
      spare = 0;
      spareCapacity = 0;
      return p;
    }
    return heap.alloc(pageRounded(size));
  }
  // A zero-size request never comes from cpp-host (empty data writes 0/0 without
  // calling malloc), but a valid block keeps any caller safe.
  if (smallSpare != 0) {
    const p = smallSpare;
    smallSpare = 0;
    return p;
  }
  return heap.alloc(SPARE_MIN);
}

/** Frees a block malloc returned for `size` bytes, keeping one for the next buffer of its kind. */
function freeHostBlock(ptr: usize, size: usize): void {
  if (size < SPARE_MIN) {
    if (smallSpare == 0) smallSpare = ptr;
    else heap.free(ptr);
    return;
  }
  if (size <= SPARE_MAX) {
    const capacity = pageRounded(size);
    if (capacity > spareCapacity) {
      if (spare != 0) heap.free(spare);
      spare = ptr;
      spareCapacity = capacity;
      return;
    }
  }
  heap.free(ptr);
}

/** Two u32 return slots that every host call returning a buffer writes into. */
const RETURN_SLOTS: usize = memory.data(16, 8);

/** Address the host writes the returned data pointer to. */
// @ts-ignore: decorator
@inline export function returnPtrSlot(): usize { return RETURN_SLOTS; }
/** Address the host writes the returned data size to. */
// @ts-ignore: decorator
@inline export function returnSizeSlot(): usize { return RETURN_SLOTS + 4; }
/** Address of a spare u32/u64 return slot (cas values, tokens, metric ids, times). */
// @ts-ignore: decorator
@inline export function returnValueSlot(): usize { return RETURN_SLOTS + 8; }

/**
 * A buffer the host returned: [ptr, ptr+size) in linear memory, owned by us.
 * `release()` frees it; a zero-size buffer owns nothing.
 */
@final
export class HostBuffer {
  ptr: usize = 0;
  size: usize = 0;
  /** A shared-data value's CAS token, returned with it (host.getSharedData); 0 for any other buffer. */
  cas: u32 = 0;

  /** Where the host writes the data pointer for this buffer. */
  ptrSlot(): usize { return returnPtrSlot(); }
  /** Where the host writes the data size for this buffer. */
  sizeSlot(): usize { return returnSizeSlot(); }

  /** Takes ownership of what the host wrote into the return slots. */
  takeFromReturnSlots(): HostBuffer {
    this.ptr = <usize>load<u32>(returnPtrSlot());
    this.size = <usize>load<u32>(returnSizeSlot());
    if (this.size == 0) this.ptr = 0;
    return this;
  }

  release(): void {
    if (this.ptr != 0) freeHostBlock(this.ptr, this.size);
    this.ptr = 0;
    this.size = 0;
    this.cas = 0;
  }

  toString(): string {
    return this.size == 0 ? "" : String.UTF8.decodeUnsafe(this.ptr, this.size);
  }
}

/** Clears the return slots before a call, so a host that writes nothing reads as empty. */
export function clearReturnSlots(): void {
  store<u32>(returnPtrSlot(), 0);
  store<u32>(returnSizeSlot(), 0);
}
