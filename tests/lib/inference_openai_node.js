// The official `openai` Node.js package against inference.local, configured only by the session
// environment (OPENAI_BASE_URL, OPENAI_API_KEY, NODE_EXTRA_CA_CERTS as pam_sandbox sets them):
// a completion, a stream, the model list, a refused model and a cut stream.  One "key: value"
// line per result, for tests/integration/t_inference_node.sh.
//   node inference_openai_node.js /path/to/node_modules/openai
const OpenAI = require(process.argv[2]);

async function main() {
    const client = new OpenAI();            // everything from the environment
    const r = await client.chat.completions.create({
        model: "fast", messages: [{ role: "user", content: "hi" }],
    });
    console.log("content: " + r.choices[0].message.content);
    console.log("usage: " + r.usage.prompt_tokens + "/" + r.usage.completion_tokens);

    const stream = await client.chat.completions.create({ model: "fast", messages: [], stream: true });
    let n = 0, text = "";
    for await (const chunk of stream) {
        n++;
        text += (chunk.choices[0] && chunk.choices[0].delta.content) || "";
    }
    console.log("stream_chunks: " + n);
    console.log("stream_text: " + text.trim());

    const models = await client.models.list();
    console.log("models: " + models.data.map((m) => m.id).sort().join(","));

    try {
        await client.chat.completions.create({ model: "gpt-4o", messages: [] });
        console.log("denied: no");
    } catch (e) {
        console.log("denied: " + e.status + " " + e.code);
    }
    try {
        const s = await client.chat.completions.create({ model: "cut", messages: [], stream: true });
        for await (const chunk of s) { void chunk; }
        console.log("cut: no error");
    } catch (e) {
        console.log("cut: " + e.constructor.name + " " + (e.code || (e.error && e.error.code)));
    }
}

main().catch((e) => {
    console.log("error: " + (e && e.stack ? e.stack : e) + (e && e.cause ? " cause: " + (e.cause.stack || e.cause) : ""));
    process.exit(1);
});
