import { readClusterHosts, stateOfFlags, adminClustersPath, ClustersAnswer } from "../../assembly/router/admin_clusters";
import { Member, MemberRecordWriter, MemberRecordReader } from "../../assembly/router/membership";

function read(text: string, cluster: string, out: MemberRecordWriter): i32 {
  const bytes = String.UTF8.encode(text);
  return readClusterHosts(changetype<usize>(bytes), bytes.byteLength, String.UTF8.encode(cluster), out);
}

function hostsOf(out: MemberRecordWriter): string {
  const r = new MemberRecordReader();
  if (!r.open(out.sink.ptr, out.sink.len)) return "malformed";
  let s = "";
  while (r.next()) s += String.UTF8.decodeUnsafe(r.address, r.length) + "=" + r.state.toString() + ";";
  return s;
}

function flags(s: string): u8 {
  const b = String.UTF8.encode(s);
  return stateOfFlags(changetype<usize>(b), changetype<usize>(b) + b.byteLength);
}

describe("admin /clusters text", () => {
  it("takes each host's address and health flags, IPv6 included", () => {
    const text =
      "models::observability_name::models\n" +
      "models::added_via_api::false\n" +
      "models::127.0.0.1:8001::cx_active::0\n" +
      "models::127.0.0.1:8001::health_flags::healthy\n" +
      "models::[::1]:8002::hostname::\n" +
      "models::[::1]:8002::health_flags::/failed_active_hc/eds_status_draining\n" +
      "models-canary::10.0.0.9:8000::health_flags::healthy\n" +
      "models::[fd00::3]:8003::health_flags::/degraded_eds_health\n" +
      "models::10.0.0.4:8000::weight::1";
    const out = new MemberRecordWriter(16);
    expect<i32>(read(text, "models", out)).toBe(ClustersAnswer.Ok);
    expect<string>(hostsOf(out)).toBe("127.0.0.1:8001=1;[::1]:8002=3;[fd00::3]:8003=2;");
  });

  it("says when no line names the cluster", () => {
    const out = new MemberRecordWriter(16);
    expect<i32>(read("other::1.2.3.4:80::health_flags::healthy\n", "models", out)).toBe(ClustersAnswer.UnknownCluster);
    expect<i32>(read("", "models", out)).toBe(ClustersAnswer.UnknownCluster);
    // A cluster with no hosts is a cluster, and empty.
    expect<i32>(read("models::added_via_api::true\n", "models", out)).toBe(ClustersAnswer.Ok);
    expect<i32>(out.count).toBe(0);
  });

  it("leaves out addresses the destination header cannot carry, and counts hosts past the limit", () => {
    const out = new MemberRecordWriter(2);
    read("m::1.1.1.1:80,2.2.2.2:80::health_flags::healthy\nm::a b:1::health_flags::healthy\n" +
      "m::3.3.3.3:80::health_flags::healthy\nm::4.4.4.4:80::health_flags::healthy\nm::5.5.5.5:80::health_flags::healthy\n", "m", out);
    expect<string>(hostsOf(out)).toBe("3.3.3.3:80=1;4.4.4.4:80=1;");
    expect<i32>(out.overflow).toBe(1);
  });

  it("maps health flags to what the filter may do", () => {
    expect<u8>(flags("healthy")).toBe(Member.Healthy);
    expect<u8>(flags("/degraded_active_hc")).toBe(Member.Degraded);
    expect<u8>(flags("/degraded_active_hc/degraded_eds_health")).toBe(Member.Degraded);
    expect<u8>(flags("/failed_eds_health")).toBe(Member.Excluded);
    expect<u8>(flags("/eds_status_draining")).toBe(Member.Excluded);
    expect<u8>(flags("/pending_dynamic_removal")).toBe(Member.Excluded);
    expect<u8>(flags("/degraded_eds_health/failed_outlier_check")).toBe(Member.Excluded);
    expect<u8>(flags("/some_future_flag")).toBe(Member.Excluded);
    expect<u8>(flags("")).toBe(Member.Excluded);
    expect<u8>(flags("healthyish")).toBe(Member.Excluded);
  });

  it("anchors the cluster name and keeps the query free of regex and URL specials", () => {
    expect<string>(adminClustersPath("prefix_router_models")).toBe("/clusters?filter=^prefix_router_models$");
    expect<string>(adminClustersPath("outbound|8000||vllm.models.svc.cluster.local"))
      .toBe("/clusters?filter=^outbound.8000..vllm.models.svc.cluster.local$");
    expect<string>(adminClustersPath("httproute/default/llm/rule/0")).toBe("/clusters?filter=^httproute.default.llm.rule.0$");
  });
});

describe("membership record", () => {
  it("rejects a record cut short or with a bad entry", () => {
    const out = new MemberRecordWriter(4);
    read("m::1.1.1.1:80::health_flags::healthy\nm::2.2.2.2:80::health_flags::healthy\n", "m", out);
    const r = new MemberRecordReader();
    expect<bool>(r.open(out.sink.ptr, out.sink.len - 3)).toBe(true);
    expect<bool>(r.next()).toBe(true);
    expect<bool>(r.next()).toBe(false);
    expect<bool>(r.open(out.sink.ptr, 4)).toBe(false);
    store<u8>(out.sink.ptr + 8, 9); // no such state
    r.open(out.sink.ptr, out.sink.len);
    expect<bool>(r.next()).toBe(false);
  });
});
