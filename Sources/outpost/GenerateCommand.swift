import ArgumentParser
import FoundationEssentials
import OutpostCore
import Inference

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text for a prompt with the local model.")

    @Option(help: "GGUF model file (default: $OUTPOST_MODEL or the fetched default model).") var model: String?
    @Option(help: "Prompt text.") var prompt: String?
    @Option(name: .customLong("prompt-file"), help: "File holding the prompt.") var promptFile: String?
    @Flag(help: "Render the prompt as one user message with the model's chat template.") var chat = false
    @Option(help: "System message for --chat (default: the template's own, if any).") var system: String?
    @Option(help: "Chat template family instead of the model's (chatml, llama3, llama2, llama2-sys, mistral-v1, mistral-v3, mistral-v7, zephyr, phi3, gemma).")
    var template: String?
    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.") var maxTokens = 256
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).") var topK = 40
    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold.") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Minimum probability relative to the most likely token.") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1: off).") var repeatPenalty: Float = 1
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("stop"), help: "Stop before this string (repeatable).") var stops: [String] = []
    @Option(help: "Threads (default: the online CPUs).") var threads: Int?
    @Option(help: "Context length (default: prompt + max tokens, up to the model's).") var ctx: Int?
    @Flag(help: "Stream the text to stderr as it is generated.") var stream = false
    @Flag(help: "Print JSON on stdout (the only output format).") var json = false

    func run() async throws {
        let input = try CommandInput.text(inline: prompt, file: promptFile, name: "prompt")
        let engine = try CommandInput.engine(model, threads: threads, chatTemplate: template)
        let promptIds: [Int32] = try CLIError.catching {
            if chat {
                var turns: [ChatTurn] = []
                if let system { turns.append(ChatTurn(role: "system", content: system)) }
                turns.append(ChatTurn(role: "user", content: input))
                return try engine.promptTokens(for: turns)
            }
            return engine.tokenizer.encode(input, addSpecial: true, parseSpecial: true)
        }
        guard maxTokens >= 0 else { throw CLIError("--max-tokens must be 0 or more") }
        let context = try CommandInput.positive(ctx, "ctx") ?? min(promptIds.count + max(maxTokens, 1), engine.model.config.contextLength)
        let options = GenerationOptions(
            maxTokens: maxTokens,
            sampling: SamplerSettings(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                      repetitionPenalty: repeatPenalty, seed: seed),
            stopStrings: stops)
        let result = try CLIError.catching {
            try engine.makeGenerator(contextLength: context).generate(promptIds: promptIds, options: options, onText: { piece in
                if stream { StandardStreams.err(piece) }
            })
        }
        if stream { StandardStreams.err("\n") }
        try JSONOutput.print(object: [
            "prompt_ids": result.promptIds.map(Int.init),
            "ids": result.ids.map(Int.init),
            "text": result.text,
            "finish_reason": result.finishReason.rawValue,
            "prompt_tokens_per_s": result.promptTokensPerSecond,
            "tokens_per_s": result.tokensPerSecond,
        ])
    }
}
