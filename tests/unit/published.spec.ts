// PublishedValue over shared data (tests/unit/shared-data-shim.js plays the
// host's part). Two objects on the same keys with different tags are two VMs.
export { malloc } from "../../assembly/abi/memory";
import { PublishedValue } from "../../assembly/router/published";
import { HostBuffer } from "../../assembly/abi/memory";

function publishText(p: PublishedValue, text: string): void {
  const bytes = String.UTF8.encode(text);
  p.publish(changetype<usize>(bytes), <usize>bytes.byteLength);
}

function textOf(b: HostBuffer): string {
  return String.UTF8.decodeUnsafe(b.ptr, b.size);
}

describe("PublishedValue", () => {
  it("hands a new value to every reader once, and tells each whether it published it", () => {
    const first = new PublishedValue("pv/value", "pv/version", 1);
    const second = new PublishedValue("pv/value", "pv/version", 2);
    const a = new HostBuffer();
    const b = new HostBuffer();
    expect<bool>(second.readIfChanged(b)).toBe(false); // nothing published yet
    expect<bool>(second.lastReadIsOwn()).toBe(false);

    publishText(first, "one");
    expect<bool>(first.readIfChanged(a)).toBe(true);
    expect<string>(textOf(a)).toBe("one");
    expect<bool>(first.lastReadIsOwn()).toBe(true);
    expect<bool>(second.readIfChanged(b)).toBe(true);
    expect<string>(textOf(b)).toBe("one");
    expect<bool>(second.lastReadIsOwn()).toBe(false);
    expect<bool>(first.readIfChanged(a)).toBe(false); // read once

    // The other VM publishes next (it took the lease): now it is the publisher.
    publishText(second, "two");
    expect<bool>(first.readIfChanged(a)).toBe(true);
    expect<bool>(first.lastReadIsOwn()).toBe(false);
    expect<bool>(second.readIfChanged(b)).toBe(true);
    expect<bool>(second.lastReadIsOwn()).toBe(true);
    a.release();
    b.release();
  });
});
