#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OutpostTesting
import Testing

/// The real agent (`outpost run`) on a temp state dir and socket, talked to with curl.
@Suite(.serialized) struct AgentIntegrationTests {
    static func chat(_ content: String, maxTokens: Int = 8, extra: String = "") -> String {
        let escaped = String(data: try! JSONSerialization.data(withJSONObject: [content], options: []), encoding: .utf8)!
        return "{\"messages\":[{\"role\":\"user\",\"content\":\(escaped.dropFirst().dropLast())}],\"max_tokens\":\(maxTokens)\(extra)}"
    }

    static func content(_ r: AgentProcess.HTTPResult) -> String? {
        ((r.json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
    }

    static func outpost(_ r: AgentProcess.HTTPResult) -> [String: Any] { r.json?["outpost"] as? [String: Any] ?? [:] }

    @Test func answersThenServesTheSameTextFromTheCache() throws {
        let agent = try AgentProcess()
        let first = try agent.post("/v1/chat/completions", json: Self.chat("What is the capital of France?"))
        #expect(first.status == 200, "\(first.body)")
        let text = try #require(Self.content(first))
        #expect(!text.isEmpty)
        #expect(Self.outpost(first)["cached"] as? Bool == false)
        let key = try #require(Self.outpost(first)["cache_key"] as? String)
        #expect(key.count == 64)
        #expect(first.json?["object"] as? String == "chat.completion")
        #expect((first.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 8)

        let second = try agent.post("/v1/chat/completions", json: Self.chat("What is the capital of France?"))
        #expect(second.status == 200)
        #expect(Self.content(second) == text)
        #expect(Self.outpost(second)["cached"] as? Bool == true)
        #expect(Self.outpost(second)["cache_key"] as? String == key)

        // bypass computes again and gives the same greedy text
        let bypass = try agent.post("/v1/chat/completions", json: Self.chat("What is the capital of France?", extra: ",\"cache\":\"bypass\""))
        #expect(Self.outpost(bypass)["cached"] as? Bool == false)
        #expect(Self.content(bypass) == text)

        let stats = try agent.curl(["/v1/cache/stats"]).json ?? [:]
        for k in ["hits", "stale_hits", "misses", "fills", "fills_dropped", "flushes", "queue_depth", "entries", "bytes", "invalidations_applied"] {
            #expect(stats[k] is Int, "missing \(k)")
        }
        #expect(stats["hits"] as? Int == 1)
        #expect(stats["misses"] as? Int == 1)

        // invalidate that key: durable, and the next request computes again
        let inv = try agent.post("/v1/cache/invalidate", json: "{\"key\":\"\(key)\"}")
        #expect(inv.status == 200, "\(inv.body)")
        let third = try agent.post("/v1/chat/completions", json: Self.chat("What is the capital of France?"))
        #expect(Self.outpost(third)["cached"] as? Bool == false)
        #expect(Self.content(third) == text)
        #expect(agent.stop() == 0)
    }

    /// Gemma 3 270M (its own architecture, SentencePiece vocabulary and chat format) behind the
    /// same API: it answers, the answer is cached, and its cache key and fingerprint are not the
    /// default model's for the same question.
    @Test func gemmaAnswersThroughTheAgentUnderItsOwnFingerprint() throws {
        let gemma = try AgentProcess(model: try TestModel.gemmaPath())
        let question = Self.chat("What is the capital of France? Answer in one word.", maxTokens: 12)
        let first = try gemma.post("/v1/chat/completions", json: question)
        #expect(first.status == 200, "\(first.body)")
        // (What it says is the engine's business, checked against llama.cpp in QuantizedModelTests:
        // this published file is the base model, which tends to repeat the question.)
        let text = try #require(Self.content(first))
        #expect(!text.isEmpty)
        #expect((first.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 12)
        let key = try #require(Self.outpost(first)["cache_key"] as? String)
        let second = try gemma.post("/v1/chat/completions", json: question)
        #expect(Self.outpost(second)["cached"] as? Bool == true)
        #expect(Self.content(second) == text)
        let models = try gemma.curl(["/v1/models"]).json
        #expect((models?["data"] as? [[String: Any]])?.first?["id"] as? String == "gemma-3-270m-q4_k_m")
        let gemmaPrint = try gemma.curl(["/health"]).json?["model_fingerprint"] as? String
        #expect(gemma.stop() == 0)

        let smol = try AgentProcess()
        let other = try smol.post("/v1/chat/completions", json: question)
        #expect(other.status == 200)
        #expect(Self.outpost(other)["cached"] as? Bool == false)
        #expect(Self.outpost(other)["cache_key"] as? String != key)
        #expect(try smol.curl(["/health"]).json?["model_fingerprint"] as? String != gemmaPrint)
        #expect(smol.stop() == 0)
    }

    @Test func streamsServerSentEventsThatAddUpToTheAnswer() throws {
        let agent = try AgentProcess()
        let whole = try agent.post("/v1/chat/completions", json: Self.chat("Name a color.", extra: ",\"cache\":\"bypass\""))
        let text = try #require(Self.content(whole))
        let streamed = try agent.post("/v1/chat/completions", json: Self.chat("Name a color.", extra: ",\"stream\":true,\"cache\":\"bypass\""))
        #expect(streamed.status == 200)
        #expect(streamed.headers["content-type"]?.hasPrefix("text/event-stream") == true)
        let events = streamed.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]")
        var joined = ""
        var finish: String?
        for e in events.dropLast() {
            #expect(e.hasPrefix("data: "))
            let o = try #require(try JSONSerialization.jsonObject(with: Data(e.dropFirst(6).utf8)) as? [String: Any])
            #expect(o["object"] as? String == "chat.completion.chunk")
            let choice = try #require((o["choices"] as? [[String: Any]])?.first)
            if let delta = choice["delta"] as? [String: Any], let c = delta["content"] as? String { joined += c }
            if let f = choice["finish_reason"] as? String { finish = f }
        }
        #expect(joined == text)
        #expect(finish == "length")

        let completion = try agent.post("/v1/completions", json: "{\"prompt\":\"The sky is\",\"max_tokens\":4}")
        #expect(completion.status == 200, "\(completion.body)")
        #expect(completion.json?["object"] as? String == "text_completion")
        #expect(((completion.json?["choices"] as? [[String: Any]])?.first?["text"] as? String)?.isEmpty == false)
        agent.stop()
    }

    @Test func badInputGetsOpenAIStyleErrors() throws {
        let agent = try AgentProcess()
        func expectError(_ r: AgentProcess.HTTPResult, _ status: Int, _ phrase: String) {
            #expect(r.status == status, "\(r.body)")
            let e = r.json?["error"] as? [String: Any]
            #expect(e?["type"] is String)
            #expect((e?["message"] as? String)?.contains(phrase) == true, "\(r.body)")
        }
        expectError(try agent.post("/v1/chat/completions", json: "{not json"), 400, "not valid JSON")
        expectError(try agent.post("/v1/chat/completions", json: "[1,2]"), 400, "JSON object")
        expectError(try agent.post("/v1/chat/completions", json: "{}"), 400, "messages")
        expectError(try agent.post("/v1/chat/completions", json: "{\"messages\":\"hi\"}"), 400, "messages must be an array")
        expectError(try agent.post("/v1/chat/completions", json: Self.chat("hi", extra: ",\"temperature\":\"hot\"")), 400, "temperature")
        expectError(try agent.post("/v1/chat/completions", json: Self.chat("hi", maxTokens: 0)), 400, "max_tokens")
        expectError(try agent.post("/v1/chat/completions", json: Self.chat("hi", maxTokens: 100_000)), 400, "max_tokens")
        expectError(try agent.post("/v1/chat/completions", json: Self.chat("hi", maxTokens: 1000)), 400, "context")
        expectError(try agent.post("/v1/chat/completions", json: Self.chat("hi", extra: ",\"stream\":1")), 400, "stream")
        expectError(try agent.post("/v1/chat/completions", json: "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}"), 400, "role")
        expectError(try agent.post("/v1/chat/completions", json: String(repeating: "[", count: 100_000)), 400, "JSON")
        let big = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + String(repeating: "a", count: 1_100_000) + "\"}]}"
        expectError(try agent.post("/v1/chat/completions", json: big), 413, "larger than")
        expectError(try agent.curl(["/no/such/path"]), 404, "no such endpoint")
        expectError(try agent.post("/v1/cache/invalidate", json: "{\"tag\":\"a\",\"all\":true}"), 400, "exactly one")
        expectError(try agent.post("/v1/cache/invalidate", json: "{\"key\":\"xyz\"}"), 400, "key")
        // still healthy after all that
        #expect(try agent.curl(["/health"]).status == 200)
        agent.stop()
    }

    @Test func healthModelsAndMetrics() throws {
        let agent = try AgentProcess()
        let health = try agent.curl(["/health"])
        #expect(health.status == 200)
        let h = try #require(health.json)
        #expect(h["ready"] as? Bool == true)
        #expect((h["model_fingerprint"] as? String)?.count == 64)
        #expect(["scalar", "avx2", "avx512-vnni", "neon", "neon-dotprod"].contains(h["kernel"] as? String ?? ""))
        #expect(h["config_version"] as? Int == 0)
        #expect(h["broker"] is String)
        let models = try agent.curl(["/v1/models"]).json
        #expect((models?["data"] as? [[String: Any]])?.first?["id"] as? String == "SmolLM2-135M-Instruct.Q4_1")
        _ = try agent.post("/v1/chat/completions", json: Self.chat("hello", maxTokens: 2))
        let metrics = try agent.curl(["/metrics"])
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("outpost_agent_requests_total"))
        #expect(metrics.body.contains("outpost_cache_misses"))
        // The agent keeps to FoundationEssentials: full Foundation would map libFoundation, ICU and
        // FoundationInternationalization, several MB of resident memory on every gateway.
        let pid = try #require(agent.process?.processID)
        let maps = try #require(ProcFile.read("/proc/\(pid)/maps"))
        #expect(maps.contains("libFoundationEssentials"))
        for library in ["libFoundation.so", "lib_FoundationICU", "libFoundationInternationalization"] {
            #expect(!maps.contains(library), "\(library) is loaded into the agent")
        }
        agent.stop()
    }

    @Test func aSecondAgentOnTheSameSocketIsRefusedAndAStaleSocketIsReplaced() throws {
        let first = try AgentProcess()
        let r = try OutpostBinary.run(["run", "--model", try TestModel.path(), "--state-dir", first.directory.file("other").path,
                                       "--socket", first.socketPath], timeout: 60)
        #expect(r.status == 1)
        #expect(r.stderr.contains("already"), "\(r.stderr)")
        #expect(try first.curl(["/health"]).status == 200)  // the first one is untouched
        first.kill9()
        // The killed agent left its socket file behind: a new agent replaces it.
        #expect(FileManager.default.fileExists(atPath: first.socketPath))
        try first.start()
        #expect(try first.curl(["/health"]).status == 200)
        first.stop()
    }

    @Test func sigtermDrainsAndKeepsFlushedFills() throws {
        let agent = try AgentProcess()
        let a = try agent.post("/v1/chat/completions", json: Self.chat("Say yes.", maxTokens: 4))
        let text = try #require(Self.content(a))
        #expect(agent.stop() == 0)  // graceful: exit 0, queue flushed
        try agent.start()
        let again = try agent.post("/v1/chat/completions", json: Self.chat("Say yes.", maxTokens: 4))
        #expect(Self.outpost(again)["cached"] as? Bool == true)
        #expect(Self.content(again) == text)
        agent.stop()
    }

    @Test func killNineAfterADurableInvalidationLosesNothingFlushed() throws {
        let agent = try AgentProcess()
        let keep = try agent.post("/v1/chat/completions", json: Self.chat("Keep me.", maxTokens: 4, extra: ",\"cache_tags\":[\"keep\"]"))
        let drop = try agent.post("/v1/chat/completions", json: Self.chat("Drop me.", maxTokens: 4, extra: ",\"cache_tags\":[\"drop\"]"))
        #expect(keep.status == 200 && drop.status == 200)
        // Both fills flushed to disk (the write-behind queue runs every 100 ms).
        let flushDeadline = Date().addingTimeInterval(20)
        while Date() < flushDeadline {
            let stats = try agent.curl(["/v1/cache/stats"]).json ?? [:]
            if (stats["entries"] as? Int ?? 0) >= 2, stats["queue_depth"] as? Int == 0 { break }
            usleep(50_000)
        }
        #expect(try agent.post("/v1/cache/invalidate", json: "{\"tag\":\"drop\"}").status == 200)
        agent.kill9()
        try agent.start()
        let keep2 = try agent.post("/v1/chat/completions", json: Self.chat("Keep me.", maxTokens: 4, extra: ",\"cache_tags\":[\"keep\"]"))
        let drop2 = try agent.post("/v1/chat/completions", json: Self.chat("Drop me.", maxTokens: 4, extra: ",\"cache_tags\":[\"drop\"]"))
        #expect(Self.outpost(keep2)["cached"] as? Bool == true)
        #expect(Self.outpost(drop2)["cached"] as? Bool == false)
        agent.stop()
    }

    @Test func fullQueueAnswers503WithRetryAfter() throws {
        let agent = try AgentProcess(configJSON: "{\"limits\":{\"max_queued_requests\":0}}")
        // A long non-cacheable generation occupies the model (streamed: its first chunk shows it
        // is running)...
        let body = Self.chat("Write a long story about the sea.", maxTokens: 400,
                             extra: ",\"temperature\":0.8,\"cache\":\"bypass\",\"stream\":true")
        let file = agent.directory.file("long.json").path
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        let longOut = agent.directory.file("long.out").path
        let long = try ChildProcess(executable: "/usr/bin/curl",
                                    arguments: ["-sSN", "--unix-socket", agent.socketPath, "-X", "POST", "--data-binary", "@\(file)",
                                                "http://localhost/v1/chat/completions"],
                                    stdoutPath: longOut)
        let deadline = Date().addingTimeInterval(60)
        while long.isRunning, Date() < deadline,
              ((try? FileManager.default.attributesOfItem(atPath: longOut)[.size] as? Int) ?? 0) == 0 {
            usleep(20_000)
        }
        #expect(long.isRunning, "the long generation ended early: \((try? String(contentsOfFile: longOut, encoding: .utf8)) ?? "")")
        // ...so the next one is refused at once.
        let refused = try agent.post("/v1/chat/completions", json: Self.chat("Quick?", maxTokens: 2, extra: ",\"cache\":\"bypass\""))
        #expect(refused.status == 503, "\(refused.body)")
        #expect(refused.headers["retry-after"] != nil)
        _ = long.wait(timeout: 300)
        agent.stop()
    }
}

/// A /proc file read to its end (they report a size of 0, so size-based readers stop early).
enum ProcFile {
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
