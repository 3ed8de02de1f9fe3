import { addressError, canonicalAddress, canonicalIPv6 } from "../../assembly/router/address";

// The expected texts are what glibc's inet_ntop writes, which is what Envoy
// names an IPv6 host by (address_impl.cc makeFriendlyAddress); the real-Envoy
// test tests/e2e/envoy-ipv6.test.ts reads them back from Envoy's /clusters.
describe("canonical addresses", () => {
  it("writes IPv6 in RFC 5952 form", () => {
    expect<string>(canonicalIPv6("0:0:0:0:0:0:0:1")).toBe("::1");
    expect<string>(canonicalIPv6("::1")).toBe("::1");
    expect<string>(canonicalIPv6("::")).toBe("::");
    expect<string>(canonicalIPv6("FD00::7")).toBe("fd00::7");
    expect<string>(canonicalIPv6("2001:0DB8:0000:0000:0000:0000:0000:0001")).toBe("2001:db8::1");
    expect<string>(canonicalIPv6("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect<string>(canonicalIPv6("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
    expect<string>(canonicalIPv6("2001:db8:0:0:1:0:0:0")).toBe("2001:db8:0:0:1::");
    expect<string>(canonicalIPv6("1:0:0:0:0:0:0:0")).toBe("1::");
    expect<string>(canonicalIPv6("0:0:0:0:0:0:0:0")).toBe("::");
    expect<string>(canonicalIPv6("fe80:0000:0000:0000:0204:61ff:fe9d:f156")).toBe("fe80::204:61ff:fe9d:f156");
    expect<string>(canonicalIPv6("::ffff:1.2.3.4")).toBe("::ffff:1.2.3.4");
    expect<string>(canonicalIPv6("::FFFF:0102:0304")).toBe("::ffff:1.2.3.4");
    expect<string>(canonicalIPv6("0:0:0:0:0:ffff:7f00:1")).toBe("::ffff:127.0.0.1");
    expect<string>(canonicalIPv6("2001:db8::ffff:10.0.0.1")).toBe("2001:db8::ffff:a00:1");
  });

  it("keeps the port and leaves IPv4 alone", () => {
    expect<string>(canonicalAddress("[0:0:0:0:0:0:0:1]:8000")).toBe("[::1]:8000");
    expect<string>(canonicalAddress("[FD00:0::07]:80")).toBe("[fd00::7]:80");
    expect<string>(canonicalAddress("10.0.0.5:8000")).toBe("10.0.0.5:8000");
  });

  it("refuses IPv4-compatible addresses, whose text differs between C libraries", () => {
    expect<bool>(addressError("[::1.2.3.4]:80") !== null).toBe(true);
    expect<bool>(addressError("[::102:304]:80") !== null).toBe(true);
    expect<bool>(addressError("[::1]:80") === null).toBe(true);
    expect<bool>(addressError("[::ffff:1.2.3.4]:80") === null).toBe(true);
  });
});
