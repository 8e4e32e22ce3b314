import ArgumentParser
import FoundationEssentials
import OutpostCore
import Inference

struct Logits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Top logits after each position of a token sequence evaluated in one pass.")

    @Option(help: "GGUF model file (default: $OUTPOST_MODEL or the fetched default model).") var model: String?
    @Option(name: .customLong("ids-file"), help: "File of comma-separated token ids.") var idsFile: String
    @Option(help: "First position to report.") var from = 0
    @Option(name: .customLong("top-k"), help: "Logits to report per position.") var topK = 8
    @Option(help: "Context length (default: the input's length, up to the model's).") var ctx: Int?
    @Option(help: "Threads (default: the online CPUs).") var threads: Int?
    @Flag(help: "Print JSON on stdout (the only output format).") var json = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: idsFile) else { throw CLIError("cannot read --ids-file \(idsFile)") }
        let ids = try CommandInput.ids(String(decoding: data, as: UTF8.self), source: idsFile)
        guard !ids.isEmpty else { throw CLIError("\(idsFile) holds no token ids") }
        guard from >= 0 && from < ids.count else { throw CLIError("--from \(from) is outside 0..<\(ids.count)") }
        guard topK > 0 else { throw CLIError("--top-k must be positive") }
        let engine = try CommandInput.engine(model, threads: threads)
        let context = try CommandInput.positive(ctx, "ctx") ?? min(ids.count, engine.model.config.contextLength)
        var steps: [[String: Any]] = []
        try CLIError.catching {
            let session = try engine.makeSession(contextLength: context)
            try session.evaluate(ids, allLogits: true) { i, logits in
                guard i >= from else { return }
                let top = TopLogits.select(logits, count: topK)
                steps.append(["pos": i, "top": top.map { [Int($0.id), Double($0.logit)] as [Any] }])
            }
        }
        try JSONOutput.print(object: ["steps": steps])
    }
}

/// The k largest logits, largest first, ties to the lower id.
enum TopLogits {
    static func select(_ logits: UnsafeBufferPointer<Float>, count k: Int) -> [(id: Int32, logit: Float)] {
        var top: [(id: Int32, logit: Float)] = []
        top.reserveCapacity(k + 1)
        for i in 0..<logits.count {
            let l = logits[i]
            if top.count == k {
                guard l > top[k - 1].logit else { continue }
                top.removeLast()
            }
            var at = top.count
            while at > 0 && l > top[at - 1].logit { at -= 1 }
            top.insert((Int32(i), l), at: at)
        }
        return top
    }
}
