// The Lua scripts wrk runs against Envoy (wrk.ts): chat bodies built per
// request in wrk's LuaJIT, so every request is distinct without a file of
// bodies. A body is an OpenAI chat completion with one of a few shared system
// prompts (what the filter's prefix affinity is for) and a user turn that no
// other request has: a counter, then a slice of a text pool at an offset that
// moves with the counter. The JSON is assembled from pieces generated here
// already JSON-escaped (plain words, line breaks as \n), so Lua only
// concatenates.
//
//   chatLoadScript  every request a chat body of about the given size; with
//                   thinkMs, each connection waits 0 to 2 x thinkMs (whole ms,
//                   wrk's delay() unit; random so connections do not fire in
//                   step) after each answer: a moderate, steady rate
//   soakMixScript   the soak's mix: routed chats and completions, pass-through
//                   GET /v1/models, non-JSON and model-less bodies, counted by
//                   kind as sent; sends exactly `quota` requests, stops its
//                   thread once all are answered, and counts answers of 5xx
// Owns: the scripts' text. Must not: run anything.
import { STOPPED_MARK, type WrkScript } from "./wrk.ts";

const WORDS = [
  "you", "are", "a", "helpful", "assistant", "for", "the", "billing", "team", "answer", "briefly", "and", "cite",
  "policy", "section", "when", "customer", "asks", "about", "refunds", "invoices", "plans", "never", "guess",
  "account", "numbers", "escalate", "disputes", "over", "limit", "to", "human", "agent", "with", "summary",
];

/**
 * Deterministic prose of exactly n characters: words, spaces and full stops,
 * and with `lineBreaks` a line break every 80 characters or so, written as
 * JSON's two-character escape \n (real prompts are lines, and a JSON body
 * carries each break as an escape, which the filter decodes). Safe inside a
 * JSON string and a Lua long string as it is; a slice of it is safe too
 * unless it cuts an escape in two, so text that is sliced has no breaks.
 */
export function prose(seed: number, n: number, lineBreaks = false): string {
  let x = (seed * 2654435761 + 1) >>> 0;
  let s = "";
  while (s.length < n) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    s += WORDS[x % WORDS.length] + (x % 11 === 0 ? ". " : lineBreaks && x % 13 === 0 ? "\\n" : " ");
  }
  // A cut after a backslash would leave half an escape.
  return s.slice(0, n).replace(/\\$/, " ");
}

/** A Lua long-bracket string literal for text that holds no "]=...=]" of the chosen level. */
function luaLong(text: string): string {
  let level = 1;
  while (text.includes(`]${"=".repeat(level)}]`)) level++;
  const eq = "=".repeat(level);
  return `[${eq}[${text}]${eq}]`;
}

const MODEL = "llama-3.1-8b";
const CHAT_HEAD = `{"model":"${MODEL}","messages":[{"role":"system","content":"`;
const CHAT_MID = `"},{"role":"user","content":"`;
const CHAT_TAIL = `"}],"max_tokens":16}`;
const POOL_CHARS = 64 * 1024;

/** Lua shared by both scripts: the system prompts, the pool, and userTurn(i, n) of n characters for request i. */
function luaCommon(systemPrompts: readonly string[]): string {
  return `
local systems = { ${systemPrompts.map(luaLong).join(",\n")} }
local pool = ${luaLong(prose(7, POOL_CHARS))}
local chat_head, chat_mid, chat_tail = ${luaLong(CHAT_HEAD)}, ${luaLong(CHAT_MID)}, ${luaLong(CHAT_TAIL)}
local json_headers = { ["Content-Type"] = "application/json" }
local function user_turn(i, n)
  local label = "turn " .. i .. ": "
  local len = n - #label
  if len < 1 then return label end
  local start = (i * 7919) % (#pool - len)
  return label .. string.sub(pool, start + 1, start + len)
end
local function chat(i, user_chars)
  local system = systems[(i % #systems) + 1]
  return wrk.format("POST", "/v1/chat/completions", json_headers, chat_head .. system .. chat_mid .. user_turn(i, user_chars) .. chat_tail)
end
local offset = 0
local n = 0
`;
}

export interface ChatLoadOptions {
  /** Body size to aim at, bytes. */
  bodyBytes: number;
  /** Distinct system prompts shared between requests. Default 8. */
  systemPrompts?: number;
  /** Share of the body that is the shared system prompt. Default 0.75. */
  sharedShare?: number;
  /** Mean pause per connection between an answer and the next request, ms; absent: none (saturation). */
  thinkMs?: number;
}

/** The shared and distinct parts' sizes for a body of about `bodyBytes`. */
export function chatBodyShape(options: ChatLoadOptions): { systemChars: number; userChars: number } {
  const overhead = CHAT_HEAD.length + CHAT_MID.length + CHAT_TAIL.length;
  const text = options.bodyBytes - overhead;
  const systemChars = Math.round(text * (options.sharedShare ?? 0.75));
  return { systemChars, userChars: text - systemChars };
}

/** Requests of about options.bodyBytes each; init(args): args[1] = the first request's number. */
export function chatLoadScript(options: ChatLoadOptions): WrkScript {
  const { systemChars, userChars } = chatBodyShape(options);
  const systems = Array.from({ length: options.systemPrompts ?? 8 }, (_, k) => prose(1000 + k, systemChars, true));
  const delay = options.thinkMs === undefined
    ? ""
    : `function delay() return math.random(0, ${2 * options.thinkMs}) end\n`;
  return {
    lua: `${luaCommon(systems)}
function init(args) offset = tonumber(args[1]) or 0; math.randomseed(offset + 1) end
function request()
  n = n + 1
  return chat(offset + n, ${userChars})
end
${delay}`,
    counters: [],
  };
}

/** The soak's kinds of request, their share in percent, and the filter's verdict each should get. */
export const SOAK_MIX = Object.freeze([
  { kind: "chat", percent: 80, expect: "routed" },
  { kind: "completion", percent: 8, expect: "routed" },
  { kind: "models", percent: 6, expect: "passthrough.not_inference" },
  { kind: "not_json", percent: 3, expect: "passthrough.not_json" },
  { kind: "no_model", percent: 3, expect: "passthrough.no_model" },
] as const);

export type SoakKind = (typeof SOAK_MIX)[number]["kind"];

/**
 * The soak's requests. init(args): args[1] = the first request's number,
 * args[2] = requests to send; the thread stops once all are answered. Counters: sent_<kind> for
 * each kind, answers, answers_5xx.
 */
export function soakMixScript(): WrkScript {
  // 16 shared system prompts of 1.5 to 3 KB, user turns of 100 to 400 characters.
  const systems = Array.from({ length: 16 }, (_, k) => prose(2000 + k, 1500 + ((k * 97) % 1500), true));
  let bound = 0;
  const branches = SOAK_MIX.map(({ kind, percent }, index) => {
    bound += percent;
    return `${index === 0 ? "if" : "elseif"} r < ${bound} then\n    sent_${kind} = sent_${kind} + 1\n    return ${soakRequestLua(kind)}`;
  });
  if (bound !== 100) throw new Error(`SOAK_MIX adds up to ${bound}%, not 100%`);
  return {
    lua: `${luaCommon(systems)}
${SOAK_MIX.map(({ kind }) => `sent_${kind} = 0`).join("\n")}
answers = 0
answers_5xx = 0
local quota = math.huge
local stopped = false
-- Requests this thread has committed to send. wrk asks delay() before every
-- request when a script defines it, a connection's first included (its
-- src/wrk.c socket_writeable, c->delayed), so each is claimed there, and once
-- the quota is claimed a connection waits instead: exactly quota requests go
-- out, and none is in flight when the thread stops.
local claimed = 0
local idle_ms = 3600000
local completion_head = ${luaLong(`{"model":"${MODEL}","max_tokens":16,"prompt":"`)}
local no_model_head = ${luaLong(`{"messages":[{"role":"user","content":"`)}
local text_headers = { ["Content-Type"] = "text/plain" }
function init(args)
  offset = tonumber(args[1]) or 0
  quota = tonumber(args[2]) or math.huge
end
local primed = false
function request()
  -- wrk builds one request when the thread starts and never sends it (seen:
  -- a quota of 1 sends the second request built), so the first is not counted.
  if not primed then
    primed = true
    return wrk.format("GET", "/v1/models", {}, nil)
  end
  n = n + 1
  local i = offset + n
  -- 37 is prime to 100: consecutive requests walk through every kind's share.
  local r = (i * 37) % 100
  ${branches.join("\n  ")}
  end
end
function delay()
  if claimed >= quota then return idle_ms end
  claimed = claimed + 1
  return 0
end
function response(status, headers, body)
  answers = answers + 1
  if status >= 500 then answers_5xx = answers_5xx + 1 end
  if answers >= quota and not stopped then
    stopped = true
    wrk.thread:stop()
    io.write("${STOPPED_MARK}\\n")
    io.flush()
  end
end
`,
    counters: [...SOAK_MIX.map(({ kind }) => `sent_${kind}`), "answers", "answers_5xx"],
  };
}

function soakRequestLua(kind: SoakKind): string {
  const userChars = "100 + (i % 301)";
  switch (kind) {
    case "chat":
      return `chat(i, ${userChars})`;
    case "completion":
      return `wrk.format("POST", "/v1/completions", json_headers, completion_head .. systems[(i % #systems) + 1] .. user_turn(i, ${userChars}) .. '"}')`;
    case "models":
      return `wrk.format("GET", "/v1/models", {}, nil)`;
    case "not_json":
      return `wrk.format("POST", "/v1/chat/completions", text_headers, "plain text, not JSON: " .. user_turn(i, 120))`;
    case "no_model":
      return `wrk.format("POST", "/v1/chat/completions", json_headers, no_model_head .. user_turn(i, ${userChars}) .. '"}]}')`;
  }
}
