import { parseConfig, ConfigResult } from "../../assembly/router/config";

function parse(json: string): ConfigResult {
  const bytes = String.UTF8.encode(json);
  return parseConfig(changetype<usize>(bytes), bytes.byteLength);
}

function errorOf(json: string): string {
  const result = parse(json);
  expect<bool>(result.config === null).toBe(true);
  return result.error;
}

describe("configuration", () => {
  it("accepts the minimal contract with documented defaults", () => {
    const result = parse('{"endpoints":[{"address":"10.0.0.5:8000"},{"address":"10.0.0.6:8000"}]}');
    const c = result.config!;
    expect<i32>(c.endpoints.length).toBe(2);
    expect<string>(c.endpoints[1].metricsAddress).toBe("10.0.0.6:8000");
    expect<string>(c.destinationHeader).toBe("x-gateway-destination-endpoint");
    expect<i32>(c.hashBlockSize).toBe(64);
    expect<i32>(c.maxPrefixBlocks).toBe(4096);
    expect<i32>(c.lruCapacityPerServer).toBe(31250);
    expect<bool>(c.lruCapacityExplicit).toBe(false);
    expect<f64>(c.weights.prefix).toBe(3);
    expect<string>(c.paths.join(",")).toBe("/v1/completions,/v1/chat/completions,/v1/responses,/v1/messages");
  });

  it("accepts IPv6 endpoints and every optional field", () => {
    const c = parse('{"endpoints":[{"address":"[::1]:8000","metricsAddress":"[fe80::1:2]:9090"},{"address":"[2001:db8::ffff:10.0.0.1]:1"}],' +
      '"destinationHeader":"X-Dest","paths":["/v1/chat/completions"],"hashBlockSize":128,"maxPrefixBlocks":64,' +
      '"lruCapacityPerServer":1000,"maxIndexBlocks":4096,"maxBodyBytes":65536,"weights":{"prefix":1,"queue":0,"kvCache":0,"inFlight":1},' +
      '"guard":{"loadFactor":2,"slack":0},"minMatchBlocks":2,"inFlightSaturation":4,"queueSaturation":3,"journalSlots":64,"tickMs":50,"parkTimeoutMs":100}').config!;
    expect<string>(c.destinationHeader).toBe("x-dest");
    expect<i32>(c.hashBlockSize).toBe(128);
    expect<bool>(c.lruCapacityExplicit).toBe(true);
    expect<u32>(c.effectiveCapacity()).toBe(1000);
    expect<f64>(c.guardLoadFactor).toBe(2);
  });

  it("bounds the total index by maxIndexBlocks", () => {
    const c = parse('{"endpoints":[{"address":"1.1.1.1:1"},{"address":"1.1.1.2:1"}],"lruCapacityPerServer":10000,"maxIndexBlocks":4096}').config!;
    expect<u32>(c.effectiveCapacity()).toBe(2048);
  });

  it("lists two fallback hosts by default, 0 to 3 when set", () => {
    expect<i32>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}]}').config!.fallbackHosts).toBe(2);
    expect<i32>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"fallbackHosts":0}').config!.fallbackHosts).toBe(0);
    expect<i32>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"fallbackHosts":3}').config!.fallbackHosts).toBe(3);
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"fallbackHosts":4}')).toBe("fallbackHosts: must be between 0.0 and 3.0");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"fallbackHosts":1.5}')).toBe("fallbackHosts: must be a whole number");
  });

  it("scores by work by default, with equal prefill speeds unless measured ones are asked for", () => {
    const d = parse('{"endpoints":[{"address":"10.0.0.5:8000"}]}').config!;
    expect<bool>(d.workScoring).toBe(true);
    expect<bool>(d.measuredSpeed).toBe(false);
    const c = parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"scoring":"weights","prefillSpeed":"measured","affinity":4,"coldBandMs":0}').config!;
    expect<bool>(c.workScoring).toBe(false);
    expect<bool>(c.measuredSpeed).toBe(true);
    expect<f64>(c.affinity).toBe(4);
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"prefillSpeed":"fast"}')).toBe('prefillSpeed: "fast" is not equal or measured');
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"scoring":"tokens"}')).toBe('scoring: "tokens" is not work or weights');
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"affinity":0.5}')).toBe("affinity: must be between 1.0 and 100.0");
  });

  it("follows a cluster instead of a list with discovery, with documented defaults", () => {
    const c = parse('{"discovery":{"cluster":"outbound|8000||vllm.models.svc.cluster.local","adminCluster":"admin_guard"}}').config!;
    const d = c.discovery!;
    expect<string>(d.cluster).toBe("outbound|8000||vllm.models.svc.cluster.local");
    expect<i32>(d.intervalMs).toBe(1000);
    expect<i32>(d.timeoutMs).toBe(1000);
    expect<i32>(d.maxEndpoints).toBe(256);
    expect<i32>(d.metricsPort).toBe(0);
    expect<i32>(c.slotCount()).toBe(256);
    const withBoth = '{"endpoints":[{"address":"10.0.0.5:8000"}],"discovery":{"cluster":"m","adminCluster":"a"}}';
    expect<string>(errorOf(withBoth)).toBe("discovery: give either endpoints or discovery, not both");
    expect<string>(errorOf('{"discovery":{"cluster":"m"}}')).toBe("discovery.adminCluster: required");
    expect<string>(errorOf('{"discovery":{"adminCluster":"a"}}')).toBe("discovery.cluster: required");
    expect<string>(errorOf('{"discovery":{"cluster":"a b","adminCluster":"a"}}')).toBe("discovery.cluster: must be printable ASCII without spaces");
    expect<string>(errorOf('{"discovery":{"cluster":"m","adminCluster":"a","maxEndpoints":0}}')).toBe("discovery.maxEndpoints: must be between 1.0 and 4096.0");
    expect<string>(errorOf('{"discovery":{"cluster":"m","adminCluster":"a","intervalMs":10}}')).toBe("discovery.intervalMs: must be between 100.0 and 3600000.0");
    expect<string>(errorOf('{"discovery":{"cluster":"m","adminCluster":"a","port":1}}')).toBe("discovery.port: unknown field");
  });

  it("checks the periods that run on the tick against it", () => {
    const one = '{"endpoints":[{"address":"10.0.0.5:8000"}]';
    expect<string>(errorOf(one + ',"tickMs":2000}')).toBe("tickMs: at most 1000: each VM tells the others it is alive from its tick, and one silent for 5000 ms is presumed gone");
    expect<string>(errorOf(one + ',"tickMs":200,"metrics":{"cluster":"m","intervalMs":100}}')).toBe("metrics.intervalMs: at least tickMs (200): scrapes are sent from the tick");
    expect<string>(errorOf('{"discovery":{"cluster":"c","adminCluster":"a","intervalMs":150},"tickMs":300}')).toBe("discovery.intervalMs: at least tickMs (300): polls are sent from the tick");
    expect<bool>(parse(one + ',"tickMs":1000,"metrics":{"cluster":"m","intervalMs":1000}}').config !== null).toBe(true);
  });

  it("reads peers with documented defaults, and every field when given", () => {
    const one = '{"endpoints":[{"address":"10.0.0.5:8000"}],';
    const d = parse(one + '"peers":{"addresses":["10.1.0.1:10000","[0:0::1]:10000"],"cluster":"prefix_router_metrics","token":"0123456789abcdef"}}').config!.peers!;
    expect<string>(d.addresses.join(",")).toBe("10.1.0.1:10000,[::1]:10000"); // written as Envoy names hosts
    expect<string>(d.cluster).toBe("prefix_router_metrics");
    expect<string>(d.token).toBe("0123456789abcdef");
    expect<string>(d.path).toBe("/.well-known/prefix-router/decisions");
    expect<i32>(d.intervalMs).toBe(100);
    expect<i32>(d.timeoutMs).toBe(1000);
    const c = parse(one + '"tickMs":50,"peers":{"addresses":["10.1.0.1:10000"],"cluster":"p","token":"A-b.c_d~e!f#g$h%i&j\'k*l+m^n`o|p",' +
      '"path":"/internal/decisions","intervalMs":50,"timeoutMs":250}}').config!.peers!;
    expect<string>(c.token).toBe("A-b.c_d~e!f#g$h%i&j'k*l+m^n`o|p");
    expect<string>(c.path).toBe("/internal/decisions");
    expect<i32>(c.intervalMs).toBe(50);
    expect<i32>(c.timeoutMs).toBe(250);
    expect<bool>(parse(one + '"peers":null}').config === null).toBe(true);
    expect<bool>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}]}').config!.peers === null).toBe(true);
  });

  it("accepts up to 64 peers and names the peers field and the reason for each invalid one", () => {
    const one = '{"endpoints":[{"address":"10.0.0.5:8000"}],';
    const ok = '"cluster":"p","token":"0123456789abcdef"';
    const peers = (fields: string): string => one + '"peers":{' + fields + "}}";
    const addresses = (n: i32): string => {
      const list: string[] = [];
      for (let i = 0; i < n; i++) list.push('"10.1.0.' + (i + 1).toString() + ':10000"');
      return '"addresses":[' + list.join(",") + "]";
    };
    expect<i32>(parse(peers(addresses(64) + "," + ok)).config!.peers!.addresses.length).toBe(64);
    expect<string>(errorOf(peers(addresses(65) + "," + ok))).toBe("peers.addresses: at most 64 peers");
    const noPeers = "peers.addresses: at least one address is required (or members, to follow a cluster)";
    expect<string>(errorOf(peers(ok))).toBe(noPeers);
    expect<string>(errorOf(peers('"addresses":[],' + ok))).toBe(noPeers);
    expect<string>(errorOf(peers('"addresses":"10.1.0.1:10000",' + ok))).toBe("peers.addresses: expected an array");
    expect<string>(errorOf(peers('"addresses":["10.1.0.1:10000","peer-b:10000"],' + ok)))
      .toBe('peers.addresses[1]: "peer-b:10000": not a valid IPv4 address (host names are not allowed)');
    expect<string>(errorOf(peers('"addresses":["10.1.0.1"],' + ok))).toBe('peers.addresses[0]: "10.1.0.1": expected ip:port');
    expect<string>(errorOf(peers('"addresses":["10.1.0.1:0"],' + ok))).toBe('peers.addresses[0]: "10.1.0.1:0": port must be 1-65535');
    expect<string>(errorOf(peers('"addresses":["10.1.0.1:10000","10.1.0.1:10000"],' + ok))).toBe('peers.addresses[1]: "10.1.0.1:10000" is listed twice');
    // Duplicates are found in the form Envoy names hosts in.
    expect<string>(errorOf(peers('"addresses":["[::1]:10000","[0::1]:10000"],' + ok))).toBe('peers.addresses[1]: "[0::1]:10000" is listed twice');
    const a = '"addresses":["10.1.0.1:10000"],';
    expect<string>(errorOf(peers(a + '"token":"0123456789abcdef"'))).toBe("peers.cluster: required");
    expect<string>(errorOf(peers(a + '"cluster":"a b","token":"0123456789abcdef"'))).toBe("peers.cluster: must be printable ASCII without spaces");
    expect<string>(errorOf(peers(a + '"cluster":"p"'))).toBe("peers.token: required (or tokenEnv, the environment variable that holds it)");
    // tokenEnv names the VM's variable that holds the token (the root reads it, root.ts); only its name is checked here.
    expect<string>(parse(peers(a + '"cluster":"p","tokenEnv":"PEER_TOKEN_2"')).config!.peers!.tokenEnv).toBe("PEER_TOKEN_2");
    expect<string>(parse(peers(a + '"cluster":"p","tokenEnv":"_x"')).config!.peers!.token).toBe("");
    expect<string>(errorOf(peers(a + '"cluster":"p","token":"0123456789abcdef","tokenEnv":"T"'))).toBe("peers: give either token or tokenEnv, not both");
    const badName = "peers.tokenEnv: must be an environment variable's name: a letter or _, then letters, digits or _, at most 128";
    expect<string>(errorOf(peers(a + '"cluster":"p","tokenEnv":"2T"'))).toBe(badName);
    expect<string>(errorOf(peers(a + '"cluster":"p","tokenEnv":"A-B"'))).toBe(badName);
    expect<string>(errorOf(peers(a + '"cluster":"p","tokenEnv":""'))).toBe(badName);
    expect<string>(errorOf(peers(a + '"cluster":"p","tokenEnv":"' + "T".repeat(129) + '"'))).toBe(badName);
    expect<i32>(parse(peers(a + '"cluster":"p","tokenEnv":"' + "T".repeat(128) + '"')).config!.peers!.tokenEnv.length).toBe(128);
    const badToken = "peers.token: must be 16 to 256 letters, digits or -._~!#$%&'*+^`| (a random secret)";
    expect<string>(errorOf(peers(a + '"cluster":"p","token":"0123456789abcde"'))).toBe(badToken); // 15 characters
    expect<string>(errorOf(peers(a + '"cluster":"p","token":"0123456789 abcdef"'))).toBe(badToken);
    expect<string>(errorOf(peers(a + '"cluster":"p","token":"0123456789:abcdef"'))).toBe(badToken);
    expect<string>(errorOf(peers(a + '"cluster":"p","token":"' + "x".repeat(257) + '"'))).toBe(badToken);
    expect<i32>(parse(peers(a + '"cluster":"p","token":"' + "x".repeat(256) + '"')).config!.peers!.token.length).toBe(256);
    expect<string>(errorOf(peers(a + '"cluster":"p","token":1234567890123456789'))).toBe("peers.token: expected a string");
    const badPath = "peers.path: must start with / and hold no query, spaces or control characters";
    expect<string>(errorOf(peers(a + ok + ',"path":"/decisions?since=0"'))).toBe(badPath);
    expect<string>(errorOf(peers(a + ok + ',"path":"decisions"'))).toBe(badPath);
    expect<string>(errorOf(peers(a + ok + ',"path":"/my decisions"'))).toBe(badPath);
    expect<string>(errorOf(peers(a + ok + ',"path":"/v1/chat/completions"'))).toBe("peers.path: must not be one of the inference paths");
    // Against the paths configured, wherever they come in the object.
    expect<string>(errorOf('{"peers":{' + a + ok + ',"path":"/generate"},"paths":["/generate"],"endpoints":[{"address":"10.0.0.5:8000"}]}'))
      .toBe("peers.path: must not be one of the inference paths");
    expect<bool>(parse(one + '"paths":["/generate"],"peers":{' + a + ok + ',"path":"/v1/chat/completions"}}').config !== null).toBe(true);
    expect<string>(errorOf(peers(a + ok + ',"intervalMs":20'))).toBe("peers.intervalMs: at least tickMs (25): asks are sent from the tick");
    expect<string>(errorOf(one + '"tickMs":200,"peers":{' + a + ok + ',"intervalMs":150}}')).toBe("peers.intervalMs: at least tickMs (200): asks are sent from the tick");
    expect<bool>(parse(one + '"tickMs":200,"peers":{' + a + ok + ',"intervalMs":200}}').config !== null).toBe(true);
    expect<string>(errorOf(peers(a + ok + ',"intervalMs":5'))).toBe("peers.intervalMs: must be between 10.0 and 3600000.0");
    expect<string>(errorOf(peers(a + ok + ',"timeoutMs":0'))).toBe("peers.timeoutMs: must be between 1.0 and 600000.0");
    expect<string>(errorOf(peers(a + ok + ',"interval":100'))).toBe("peers.interval: unknown field");
    expect<string>(errorOf(one + '"peers":["10.1.0.1:10000"]}')).toBe("peers: expected an object");
  });

  it("follows the peers from a cluster's members instead of a list, and names what is wrong with one", () => {
    const one = '{"endpoints":[{"address":"10.0.0.5:8000"}],';
    const ok = '"cluster":"prefix_router_metrics","token":"0123456789abcdef"';
    const peers = (fields: string): string => one + '"peers":{' + fields + "}}";
    const m = parse(peers('"members":{"cluster":"prefix_router_peers","adminCluster":"prefix_router_admin_guard"},' + ok)).config!.peers!;
    expect<i32>(m.addresses.length).toBe(0);
    const d = m.members!;
    expect<string>(d.cluster).toBe("prefix_router_peers");
    expect<string>(d.adminCluster).toBe("prefix_router_admin_guard");
    expect<i32>(d.intervalMs).toBe(1000);
    expect<i32>(d.maxEndpoints).toBe(64);
    expect<i32>(parse(peers('"members":{"cluster":"c","adminCluster":"g","intervalMs":250,"timeoutMs":50},' + ok)).config!.peers!.members!.intervalMs).toBe(250);
    expect<string>(errorOf(peers('"addresses":["10.1.0.1:10000"],"members":{"cluster":"c","adminCluster":"g"},' + ok))).toBe("peers: give either addresses or members, not both");
    expect<string>(errorOf(peers('"members":{"adminCluster":"g"},' + ok))).toBe("peers.members.cluster: required");
    expect<string>(errorOf(peers('"members":{"cluster":"c"},' + ok))).toBe("peers.members.adminCluster: required");
    expect<string>(errorOf(peers('"members":{"cluster":"c","adminCluster":"g","maxEndpoints":8},' + ok))).toBe("peers.members.maxEndpoints: unknown field");
    expect<string>(errorOf(one + '"tickMs":200,"peers":{"members":{"cluster":"c","adminCluster":"g","intervalMs":150},' + ok + ',"intervalMs":200}}'))
      .toBe("peers.members.intervalMs: at least tickMs (200): polls are sent from the tick");
  });

  it("judges the replicas from the scrapes unless told how many share the servers", () => {
    const one = '{"endpoints":[{"address":"10.0.0.5:8000"}]';
    expect<i32>(parse(one + "}").config!.replicas).toBe(0);
    expect<i32>(parse(one + ',"replicas":"auto"}').config!.replicas).toBe(0);
    expect<i32>(parse(one + ',"replicas":1}').config!.replicas).toBe(1);
    expect<i32>(parse(one + ',"replicas":64}').config!.replicas).toBe(64);
    expect<string>(errorOf(one + ',"replicas":0}')).toBe("replicas: must be between 1.0 and 64.0");
    expect<string>(errorOf(one + ',"replicas":2.5}')).toBe("replicas: must be a whole number");
    expect<string>(errorOf(one + ',"replicas":"many"}')).toBe('replicas: must be "auto" or a whole number from 1 to 64');
  });

  it("reads sessions and the affinity bound", () => {
    const c = parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"sessionHeader":"X-Session-Id","affinityEntries":64}').config!;
    expect<string>(c.sessionHeader).toBe("x-session-id");
    expect<i32>(c.affinityEntries).toBe(64);
    const d = parse('{"endpoints":[{"address":"10.0.0.5:8000"}]}').config!;
    expect<string>(d.sessionHeader).toBe("");
    expect<i32>(d.affinityEntries).toBe(16384);
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"sessionHeader":"a b"}')).toBe("sessionHeader: must be a header name");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"sessionHeader":"x-gateway-destination-endpoint"}')).toBe("sessionHeader: must not be the destination header");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"affinityEntries":8}')).toBe("affinityEntries: must be between 16.0 and 1048576.0");
  });

  it("writes endpoint addresses as Envoy names its hosts, and finds duplicates in that form", () => {
    const c = parse('{"endpoints":[{"address":"[0:0:0:0:0:0:0:1]:8000","metricsAddress":"[FD00::0:7]:9090"},{"address":"10.0.0.6:8000"}]}').config!;
    expect<string>(c.endpoints[0].address).toBe("[::1]:8000");
    expect<string>(c.endpoints[0].metricsAddress).toBe("[fd00::7]:9090");
    expect<string>(errorOf('{"endpoints":[{"address":"[::1]:8000"},{"address":"[0::1]:8000"}]}')).toBe("endpoints[1].address: duplicate of endpoints[0]");
  });

  it("bounds the index so that two configurations fit in V8's 1 GiB of Wasm memory", () => {
    // Default maxIndexBlocks 2^22 at stride 16: 2^18 entries.
    expect<u64>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}]}').config!.maxIndexEntries()).toBe(1 << 18);
    // 2^22 entries is the limit: 2^24 blocks at stride 4 passes, at stride 2 it does not.
    expect<bool>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"maxIndexBlocks":16777216,"indexStride":4}').config !== null).toBe(true);
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"maxIndexBlocks":16777216,"indexStride":2}'))
      .toBe("maxIndexBlocks: at most 8388608 with indexStride 2 (4194304 index entries): a configuration update runs two indexes in one VM, whose memory V8 caps at 1 GiB");
    // Explicit per-server capacities that add up to less are what counts.
    expect<bool>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"maxIndexBlocks":67108864,"indexStride":1,"lruCapacityPerServer":1000}').config !== null).toBe(true);
    expect<bool>(parse('{"endpoints":[{"address":"10.0.0.5:8000"}],"maxIndexBlocks":67108864,"indexStride":1}').config === null).toBe(true);
  });

  it("names the field and the reason for each invalid configuration", () => {
    expect<string>(errorOf("not json")).toBe("configuration: expected an object");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}]')).toBe("configuration: not valid JSON");
    expect<string>(errorOf("{}")).toBe("endpoints: at least one endpoint is required (or discovery, to follow a cluster)");
    expect<string>(errorOf('{"endpoints":[]}')).toBe("endpoints: at least one endpoint is required (or discovery, to follow a cluster)");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"hashBlocksize":64}')).toBe("hashBlocksize: unknown field");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"hashBlockSize":"64"}')).toBe("hashBlockSize: expected a number");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"hashBlockSize":0}')).toBe("hashBlockSize: must be between 8.0 and 4096.0");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"}],"maxPrefixBlocks":2.5}')).toBe("maxPrefixBlocks: must be a whole number");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:8000"},{"address":"10.0.0.5:8000"}]}')).toBe("endpoints[1].address: duplicate of endpoints[0]");
    expect<string>(errorOf('{"endpoints":[{"address":"model-a:8000"}]}')).toBe('endpoints[0].address: "model-a:8000": not a valid IPv4 address (host names are not allowed)');
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.256:8000"}]}')).toBe('endpoints[0].address: "10.0.0.256:8000": not a valid IPv4 address (host names are not allowed)');
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:0"}]}')).toBe('endpoints[0].address: "10.0.0.5:0": port must be 1-65535');
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5"}]}')).toBe('endpoints[0].address: "10.0.0.5": expected ip:port');
    expect<string>(errorOf('{"endpoints":[{"address":"[::g]:80"}]}')).toBe('endpoints[0].address: "[::g]:80": not a valid IPv6 address');
    expect<string>(errorOf('{"endpoints":[{"addr":"10.0.0.5:80"}]}')).toBe("endpoints[0].addr: unknown field");
    expect<string>(errorOf('{"endpoints":[{}]}')).toBe("endpoints[0].address: required");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:80"}],"weights":{"prefix":0,"queue":0,"kvCache":0,"inFlight":0}}')).toBe("weights: at least one weight must be positive");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:80"}],"weights":{"prefix":-1}}')).toBe("weights.prefix: must be between 0.0 and 1000.0");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:80"}],"paths":["v1/x"]}')).toBe("paths[0]: must be a path starting with / and without a query");
    expect<string>(errorOf('{"endpoints":[{"address":"10.0.0.5:80"}],"destinationHeader":":authority"}')).toBe("destinationHeader: must be a header name");
  });
});
