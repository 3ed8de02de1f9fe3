import { PromptExtractor, Extract } from "../../assembly/router/request";

const extractor = new PromptExtractor(4096);

function run(body: string, chat: bool): i32 {
  const bytes = String.UTF8.encode(body);
  return extractor.extract(changetype<usize>(bytes), bytes.byteLength, chat);
}

function promptOf(body: string, chat: bool): string {
  expect<i32>(run(body, chat)).toBe(Extract.Ok);
  return extractor.prompt.toString();
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

  it("sends token-id prompts to pass-through", () => {
    expect<i32>(run('{"model":"m","prompt":[1,2,3]}', false)).toBe(Extract.TokenPrompt);
    expect<i32>(run('{"model":"m","prompt":[[1,2],[3]]}', false)).toBe(Extract.TokenPrompt);
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

  it("concatenates text parts and marks other parts", () => {
    const p = promptOf('{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"text":"b","type":"text"}]}]}', true);
    expect<string>(p).toBe("user\x1Fa\x1Dimage_urlb\x1E");
  });

  it("gives the same bytes for equal JSON values spelled differently", () => {
    const a = promptOf('{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \\"q\\" \\ud83d\\ude00"}]}', true);
    const b = promptOf(' {\n "messages" : [ { "content" : "caf\\u00e9 \\u0022q\\u0022 😀" , "role":"us\\u0065r" } ] ,\r\n "model":"\\u006d" } ', true);
    expect<string>(a).toBe(b);
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
