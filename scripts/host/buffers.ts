// Body and other buffers as proxy_get_buffer_bytes / proxy_set_buffer_bytes see
// them. Which buffer a type names at a given moment follows envoy
// source/extensions/common/wasm/context.cc Context::getBuffer; the edit rules
// follow Buffer::copyFrom there (start 0: drain `length` then prepend; start at
// or past the end: append; anything else BadArgument; immutable buffers
// BadArgument), and reads are clamped as cpp-host src/exports.cc
// get_buffer_bytes does.
import { BufferType, WasmResult } from "./enums.ts";
import type { Context } from "./context.ts";

/** An Envoy Buffer::Instance: bytes that filters may edit in place. */
export class MutableBuffer {
  bytes: Uint8Array;

  constructor(bytes: Uint8Array = new Uint8Array(0)) {
    this.bytes = bytes;
  }

  get length(): number {
    return this.bytes.length;
  }

  prepend(data: Uint8Array): void {
    this.bytes = concat(data, this.bytes);
  }

  add(data: Uint8Array): void {
    this.bytes = concat(this.bytes, data);
  }

  /** Buffer::drain: removes up to `n` leading bytes (more than the length empties it). */
  drain(n: number): void {
    this.bytes = this.bytes.subarray(Math.min(n, this.bytes.length)).slice();
  }

  /** Buffer::move: takes all of `other`'s bytes, leaving it empty. */
  moveFrom(other: MutableBuffer): void {
    if (other === this) return;
    this.add(other.bytes);
    other.bytes = new Uint8Array(0);
  }
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * What getBuffer() returns: an editable Envoy buffer, read-only bytes, or
 * Envoy's empty BufferBase (Ok and empty on read, BadArgument on write).
 */
export type WasmBuffer =
  | { readonly kind: "mutable"; readonly buffer: MutableBuffer }
  | { readonly kind: "const"; readonly bytes: Uint8Array }
  | { readonly kind: "empty" };

const EMPTY: WasmBuffer = { kind: "empty" };

export function bufferBytes(b: WasmBuffer): Uint8Array {
  return b.kind === "mutable" ? b.buffer.bytes : b.kind === "const" ? b.bytes : new Uint8Array(0);
}

/** envoy context.cc Context::getBuffer; null means NotFound. */
export function getBuffer(ctx: Context, type: number): WasmBuffer | null {
  switch (type) {
    case BufferType.CallData:
      // Envoy hands back its reusable buffer_ object as last filled; the emulator gives an empty one.
      return EMPTY;
    case BufferType.VmConfiguration:
      return ctx.vm === null ? EMPTY : { kind: "const", bytes: ctx.vm.vmConfiguration };
    case BufferType.PluginConfiguration:
      return ctx.tempPlugin !== null ? { kind: "const", bytes: ctx.tempPlugin.configuration } : null;
    case BufferType.HttpRequestBody: {
      if (ctx.bufferingRequestBody && ctx.callbacks !== null) {
        const b = ctx.callbacks.decodingBuffer();
        return b === null ? EMPTY : { kind: "mutable", buffer: b };
      }
      return ctx.requestBodyBuffer === null ? EMPTY : { kind: "mutable", buffer: ctx.requestBodyBuffer };
    }
    case BufferType.HttpResponseBody: {
      if (ctx.bufferingResponseBody && ctx.callbacks !== null) {
        const b = ctx.callbacks.encodingBuffer();
        return b === null ? EMPTY : { kind: "mutable", buffer: b };
      }
      return ctx.responseBodyBuffer === null ? EMPTY : { kind: "mutable", buffer: ctx.responseBodyBuffer };
    }
    case BufferType.DownstreamData:
    case BufferType.UpstreamData:
    case BufferType.GrpcReceiveBuffer:
      return EMPTY;
    case BufferType.HttpCallResponseBody: {
      const response = ctx.rootContext().httpCallResponse;
      return response === null ? null : { kind: "const", bytes: response.body };
    }
    default:
      return null;
  }
}

/** envoy context.cc Buffer::copyFrom (newest form). */
export function copyFrom(b: WasmBuffer, start: number, length: number, data: Uint8Array): number {
  if (b.kind !== "mutable") return WasmResult.BadArgument;
  const buffer = b.buffer;
  if (start === 0) {
    if (length !== 0) buffer.drain(length);
    buffer.prepend(data);
    return WasmResult.Ok;
  }
  if (start >= buffer.length) {
    buffer.add(data);
    return WasmResult.Ok;
  }
  return WasmResult.BadArgument;
}
