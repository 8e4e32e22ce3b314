import Foundation
import Testing
@testable import OutpostCore

@Suite struct CompletionRequestTests {
    static func parse(_ json: String, kind: CompletionRequest.Kind = .chat) throws(QueryError) -> CompletionRequest {
        try CompletionRequest.parse(Data(json.utf8), kind: kind, defaults: SamplingParameters(maxTokens: 64))
    }

    @Test func chatRequestWithEveryField() throws {
        let r = try Self.parse("""
        {"model":"x","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
         "max_tokens":12,"temperature":0.5,"top_p":0.9,"top_k":20,"seed":7,"stream":true,"cache":"refresh",
         "cache_tags":["b","a","b"],"namespace":"ops","user":"ignored","presence_penalty":0,"stop":null}
        """)
        #expect(r.kind == .chat)
        #expect(r.stream)
        #expect(r.model == "x")
        #expect(r.query.messages.map(\.role) == ["system", "user"])
        #expect(r.query.messages[1].content == "Hi there")
        #expect(r.query.sampling.maxTokens == 12)
        #expect(r.query.sampling.temperature == 0.5)
        #expect(r.query.sampling.topK == 20)
        #expect(r.query.sampling.seed == 7)
        #expect(r.query.cacheMode == .refresh)
        #expect(r.query.tags == ["a", "b"])
        #expect(r.query.namespace == "ops")
        #expect(r.query.isCacheable)  // a seed makes it reproducible
    }

    @Test func defaultsFillWhatIsMissing() throws {
        let r = try Self.parse(#"{"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(r.query.sampling.maxTokens == 64)
        #expect(r.query.sampling.temperature == 0)
        #expect(!r.stream)
        #expect(r.query.cacheMode == .use)
        #expect(r.query.namespace == Query.defaultNamespace)
    }

    @Test func completionPromptIsCarriedUnderItsOwnRole() throws {
        let r = try Self.parse(#"{"prompt":"Once upon","max_tokens":3}"#, kind: .completion)
        #expect(r.rawPrompt == "Once upon")
        #expect(r.query.messages == [ChatMessage(role: CompletionRequest.rawPromptRole, content: "Once upon")])
        let list = try Self.parse(#"{"prompt":["Once upon"]}"#, kind: .completion)
        #expect(list.rawPrompt == "Once upon")
    }

    static let bad: [(String, String)] = [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ("\"text\"", "JSON object"),
        ("{}", "messages is required"),
        (#"{"messages":[]}"#, "at least one"),
        (#"{"messages":{}}"#, "messages must be an array"),
        (#"{"messages":[1]}"#, "messages[0] must be an object"),
        (#"{"messages":[{"role":"user"}]}"#, "messages[0].content"),
        (#"{"messages":[{"role":"root","content":"x"}]}"#, "messages[0].role"),
        (#"{"messages":[{"role":"user","content":"x"}],"max_tokens":"5"}"#, "max_tokens must be a number"),
        (#"{"messages":[{"role":"user","content":"x"}],"max_tokens":1.5}"#, "max_tokens must be an integer"),
        (#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, "max_tokens"),
        (#"{"messages":[{"role":"user","content":"x"}],"temperature":true}"#, "temperature must be a number"),
        (#"{"messages":[{"role":"user","content":"x"}],"temperature":-1}"#, "temperature"),
        (#"{"messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "stream must be true or false"),
        (#"{"messages":[{"role":"user","content":"x"}],"cache":"sometimes"}"#, "cache must be one of"),
        (#"{"messages":[{"role":"user","content":"x"}],"cache_tags":[1]}"#, "cache_tags must be a list of strings"),
        (#"{"messages":[{"role":"user","content":"x"}],"namespace":""}"#, "namespace"),
        (#"{"messages":[{"role":"user","content":"x"}],"seed":-3}"#, "seed"),
        (#"{"messages":[{"role":"user","content":"x"}],"n":2}"#, "n must be 1"),
        (#"{"messages":[{"role":"user","content":"x"}],"stop":["\n"]}"#, "stop"),
    ]

    @Test(arguments: bad)
    func badRequestsNameTheProblem(json: String, phrase: String) {
        do {
            _ = try Self.parse(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.message.contains(phrase), "\(error.message)")
        }
    }

    @Test func completionWithoutPromptIsRefused() {
        #expect(throws: QueryError.self) { try Self.parse(#"{"prompt":""}"#, kind: .completion) }
        #expect(throws: QueryError.self) { try Self.parse(#"{"prompt":5}"#, kind: .completion) }
        #expect(throws: QueryError.self) { try Self.parse(#"{"messages":[{"role":"user","content":"x"}]}"#, kind: .completion) }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        #expect(throws: QueryError.self) { try Self.parse(deep) }
        let deepObject = "{\"messages\":" + String(repeating: "[", count: 100_000) + "}"
        #expect(throws: QueryError.self) { try Self.parse(deepObject) }
    }
}
