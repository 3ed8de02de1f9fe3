import { PromptExtractor, Extract, Api } from "../../assembly/router/request";
import { xxh64String } from "../../assembly/router/hash";

const extractor = new PromptExtractor(4096);

function runApi(body: string, api: i32): i32 {
  const bytes = String.UTF8.encode(body);
  return extractor.extract(changetype<usize>(bytes), bytes.byteLength, api);
}

function run(body: string, chat: bool): i32 {
  return runApi(body, chat ? Api.Chat : Api.Completions);
}

function promptOf(body: string, chat: bool): string {
  expect<i32>(run(body, chat)).toBe(Extract.Ok);
  return extractor.prompt.toString();
}

function promptOfApi(body: string, api: i32): string {
  expect<i32>(runApi(body, api)).toBe(Extract.Ok);
  return extractor.prompt.toString();
}

/** The canonical prompt's bytes as hex, for layouts with binary parts. */
function hexOf(): string {
  let s = "";
  for (let i: usize = 0; i < extractor.prompt.len; i++) {
    const b = load<u8>(extractor.prompt.ptr + i);
    s += (b < 16 ? "0" : "") + b.toString(16);
  }
  return s;
}

/** Hex of a string's UTF-8 bytes. */
function hex(text: string): string {
  const bytes = Uint8Array.wrap(String.UTF8.encode(text));
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return s;
}

/** Hex of the 0x1D type 0x1C digest marker of a non-text part whose JSON text is `json`. */
function otherPart(type: string, json: string): string {
  const digest = xxh64String(json);
  let s = hex("\x1D" + type + "\x1C");
  for (let i: u64 = 0; i < 64; i += 8) {
    const b = <u32>((digest >> i) & 0xFF);
    s += (b < 16 ? "0" : "") + b.toString(16);
  }
  return s;
}

describe("completions bodies", () => {
  it("extracts model and a string prompt", () => {
    expect<i32>(run('{"model":"m1","prompt":"hello world","max_tokens":5}', false)).toBe(Extract.Ok);
    expect<string>(extractor.model.toString()).toBe("m1");
    expect<string>(extractor.prompt.toString()).toBe("hello world");
  });

  it("joins an array of prompts with NUL", () => {
    expect<string>(promptOf('{"prompt":["a","b"],"model":"m"}', false)).toBe("a\0b");
  });

  it("hashes token-id prompts as their own kind; batches and bad ids pass through", () => {
    expect<i32>(run('{"model":"m","prompt":[1,2,4294967295]}', false)).toBe(Extract.Ok);
    expect<string>(hexOf()).toBe("1b" + "01000000" + "02000000" + "ffffffff");
    expect<i32>(run('{"model":"m","prompt":[[1,2],[3]]}', false)).toBe(Extract.TokenPrompt);
    expect<i32>(run('{"model":"m","prompt":[1,-2]}', false)).toBe(Extract.TokenPrompt);
    expect<i32>(run('{"model":"m","prompt":[1,2.5]}', false)).toBe(Extract.TokenPrompt);
    expect<i32>(run('{"model":"m","prompt":[1,4294967296]}', false)).toBe(Extract.TokenPrompt);
    expect<i32>(run('{"model":"m","prompt":[1,"a"]}', false)).toBe(Extract.TokenPrompt);
  });

  it("rejects missing model, missing prompt and non-JSON", () => {
    expect<i32>(run('{"prompt":"x"}', false)).toBe(Extract.NoModel);
    expect<i32>(run('{"model":"","prompt":"x"}', false)).toBe(Extract.NoModel);
    expect<i32>(run('{"model":7,"prompt":"x"}', false)).toBe(Extract.NoModel);
    expect<i32>(run('{"model":"m"}', false)).toBe(Extract.NoPrompt);
    expect<i32>(run('{"model":"m","prompt":[]}', false)).toBe(Extract.NoPrompt);
    expect<i32>(run('{"model":"m","prompt":"x"', false)).toBe(Extract.NotJson);
    expect<i32>(run('{"model":"m","prompt":"x"} trailing', false)).toBe(Extract.NotJson);
    expect<i32>(run('{"model":"m","prompt":"x",}', false)).toBe(Extract.NotJson);
    expect<i32>(run('{"model":"m","prompt":"a\tb"}', false)).toBe(Extract.NotJson);
    expect<i32>(run('{"model":"m","prompt":"\\q"}', false)).toBe(Extract.NotJson);
    expect<i32>(run('{"model":"m","x":[1,,2],"prompt":"p"}', false)).toBe(Extract.NotJson);
    expect<i32>(run('{"model":"m","x":01,"prompt":"p"}', false)).toBe(Extract.NotJson);
    expect<i32>(run('', false)).toBe(Extract.NotJson);
    expect<i32>(run('[]', false)).toBe(Extract.NotJson);
  });

  it("takes the last of duplicate keys, as JSON.parse does", () => {
    expect<string>(promptOf('{"model":"a","prompt":"one","prompt":"two","model":"b"}', false)).toBe("two");
    expect<string>(extractor.model.toString()).toBe("b");
  });

  it("validates ignored fields of every kind", () => {
    expect<i32>(run('{"model":"m","n":-1.5e+3,"t":true,"f":false,"z":null,"o":{"a":[{},[]]},"prompt":"p"}', false)).toBe(Extract.Ok);
    expect<i32>(run('{"model":"m","t":tru,"prompt":"p"}', false)).toBe(Extract.NotJson);
  });

  it("stops producing prompt bytes at the cap but still validates", () => {
    const small = new PromptExtractor(8);
    const body = String.UTF8.encode('{"model":"m","prompt":"0123456789abcdef","x":[1,2]}');
    expect<i32>(small.extract(changetype<usize>(body), body.byteLength, false)).toBe(Extract.Ok);
    expect<string>(small.prompt.toString()).toBe("01234567");
    const bad = String.UTF8.encode('{"model":"m","prompt":"0123456789abcdef","x":[1,2}');
    expect<i32>(small.extract(changetype<usize>(bad), bad.byteLength, false)).toBe(Extract.NotJson);
  });
});

describe("chat bodies", () => {
  it("canonicalizes role and content in message order", () => {
    const p = promptOf('{"model":"m","messages":[{"role":"system","content":"S"},{"content":"U","role":"user"}]}', true);
    expect<string>(p).toBe("system\x1FS\x1Euser\x1FU\x1E");
  });

  it("concatenates text parts and marks other parts with the digest of their JSON text", () => {
    const image = '{"type":"image_url","image_url":{"url":"x"}}';
    const p = promptOf('{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},' + image + ',{"text":"b","type":"text"}]}]}', true);
    expect<string>(hexOf()).toBe(hex("user\x1Fa") + otherPart("image_url", image) + hex("b\x1E"));
    // Equal text, another image: another prompt.
    const q = promptOf('{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"y"}},{"text":"b","type":"text"}]}]}', true);
    expect<bool>(p == q).toBe(false);
  });

  it("puts tools after the leading system messages, as compact JSON", () => {
    const tools = '[ {"type": "function", "function": {"name": "get_w\\u0065ather", "parameters": {}}} ]';
    const p = promptOf('{"model":"m","tools":' + tools + ',"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]}', true);
    expect<string>(p).toBe('system\x1Fs\x1E\x1C[{"type":"function","function":{"name":"get_weather","parameters":{}}}]\x1Euser\x1Fu\x1E');
    // Without a system message the tools come first; other tools, another prompt.
    expect<string>(promptOf('{"model":"m","messages":[{"role":"user","content":"u"}],"tools":[{"a":1}]}', true)).toBe('\x1C[{"a":1}]\x1Euser\x1Fu\x1E');
    expect<string>(promptOf('{"model":"m","messages":[{"role":"system","content":"s"}],"tools":[]}', true)).toBe("system\x1Fs\x1E\x1C[]\x1E");
  });

  it("reads cache_salt apart from the prompt", () => {
    expect<string>(promptOf('{"model":"m","cache_salt":"tenant-a","messages":[{"role":"user","content":"u"}]}', true)).toBe("user\x1Fu\x1E");
    expect<string>(extractor.salt.toString()).toBe("tenant-a");
    run('{"model":"m","messages":[{"role":"user","content":"u"}]}', true);
    expect<usize>(extractor.salt.len).toBe(0);
  });

  it("gives the same bytes for equal JSON values spelled differently", () => {
    const a = promptOf('{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \\"q\\" \\ud83d\\ude00"}]}', true);
    const b = promptOf(' {\n "messages" : [ { "content" : "caf\\u00e9 \\u0022q\\u0022 😀" , "role":"us\\u0065r" } ] ,\r\n "model":"\\u006d" } ', true);
    expect<string>(a).toBe(b);
  });

  it("writes strings as JSON.stringify spells them: required escapes kept, every other character itself", () => {
    // A line break stays the two bytes \n; \u00e9, \/ and \u000A become é, / and \n; a control character without a letter is \u00xx.
    expect<string>(promptOf('{"model":"m","messages":[{"role":"user","content":"a\\nb \\u00e9 \\/ \\u000A \\u0001 \\"q\\" \\\\"}]}', true))
      .toBe("user\x1Fa\\nb é / \\n \\u0001 \\\"q\\\" \\\\\x1E");
    // A kept role or text part is spelled by what it holds, not by the string read after it.
    expect<string>(promptOf('{"model":"m","messages":[{"role":"us\\u0065r","content":[{"text":"caf\\u00e9","type":"text","z":"plain"}]}]}', true))
      .toBe("user\x1Fcafé\x1E");
    // The tools' compact JSON keeps its strings' required escapes, so it is JSON still.
    expect<string>(promptOf('{"model":"m","tools":[{"d":"say \\"hi\\"\\u0021"}],"messages":[{"role":"user","content":"u"}]}', true))
      .toBe('\x1C[{"d":"say \\"hi\\"!"}]\x1Euser\x1Fu\x1E');
  });

  it("turns lone surrogate escapes into U+FFFD", () => {
    expect<string>(promptOf('{"model":"m","prompt":"a\\ud800b\\udc00"}', false)).toBe("a\uFFFDb\uFFFD");
  });

  it("passes through chat bodies without messages or with bad messages", () => {
    expect<i32>(run('{"model":"m","messages":[]}', true)).toBe(Extract.NoPrompt);
    expect<i32>(run('{"model":"m","messages":"hi"}', true)).toBe(Extract.NoPrompt);
    expect<i32>(run('{"model":"m","messages":["hi"]}', true)).toBe(Extract.NoPrompt);
    expect<i32>(run('{"model":"m","prompt":"hi"}', true)).toBe(Extract.NoPrompt);
  });

  it("survives deep nesting without recursion", () => {
    let deep = "";
    for (let i = 0; i < 600; i++) deep += "[";
    expect<i32>(run('{"model":"m","x":' + deep + '}', true)).toBe(Extract.NotJson);
    let ok = "";
    for (let i = 0; i < 100; i++) ok += "[";
    for (let i = 0; i < 100; i++) ok += "]";
    expect<i32>(run('{"model":"m","x":' + ok + ',"messages":[{"role":"u","content":"c"}]}', true)).toBe(Extract.Ok);
  });
});

describe("Responses bodies", () => {
  it("writes instructions as the system message, then tools, then the input", () => {
    expect<string>(promptOfApi('{"model":"m","input":"hi","instructions":"be brief","tools":[{"type":"web_search"}]}', Api.Responses))
      .toBe('system\x1Fbe brief\x1E\x1C[{"type":"web_search"}]\x1Euser\x1Fhi\x1E');
  });

  it("reads message items with string or input_text content, and folds other items in by digest", () => {
    const call = '{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}';
    promptOfApi('{"model":"m","input":[{"role":"user","content":"q"},' + call +
      ',{"type":"message","role":"assistant","content":[{"type":"output_text","text":"a"}]},{"role":"user","content":[{"type":"input_text","text":"b"}]}]}', Api.Responses);
    expect<string>(hexOf()).toBe(hex("user\x1Fq\x1E") + otherPart("function_call", call) + hex("\x1Eassistant\x1Fa\x1Euser\x1Fb\x1E"));
  });

  it("needs an input", () => {
    expect<i32>(runApi('{"model":"m","instructions":"x"}', Api.Responses)).toBe(Extract.NoPrompt);
    expect<i32>(runApi('{"model":"m","input":7}', Api.Responses)).toBe(Extract.NoPrompt);
  });
});

describe("Anthropic Messages bodies", () => {
  it("writes the system string or text blocks first, then tools, then the messages", () => {
    expect<string>(promptOfApi('{"model":"m","max_tokens":8,"system":"s","messages":[{"role":"user","content":"u"}]}', Api.Messages))
      .toBe("system\x1Fs\x1Euser\x1Fu\x1E");
    expect<string>(promptOfApi('{"model":"m","tools":[{"name":"t"}],"system":[{"type":"text","text":"s1"},{"type":"text","text":"s2"}],' +
      '"messages":[{"role":"user","content":[{"type":"text","text":"u"}]}]}', Api.Messages))
      .toBe('system\x1Fs1s2\x1E\x1C[{"name":"t"}]\x1Euser\x1Fu\x1E');
  });

  it("folds image and tool blocks in by digest", () => {
    const image = '{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}}';
    promptOfApi('{"model":"m","messages":[{"role":"user","content":[' + image + ',{"type":"text","text":"what is it"}]}]}', Api.Messages);
    expect<string>(hexOf()).toBe(hex("user\x1F") + otherPart("image", image) + hex("what is it\x1E"));
  });
});
