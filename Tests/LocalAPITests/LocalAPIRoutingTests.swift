import Foundation
import OutpostCore
import OutpostTesting
import Testing

/// What each endpoint answers when all goes well: completions from the service's answering side,
/// health, statistics, invalidation and metrics from its admin side, in OpenAI's shapes.
@Suite struct LocalAPIRoutingTests {
    static func outpost(_ r: RawHTTPResponse) -> [String: Any] { r.json?["outpost"] as? [String: Any] ?? [:] }

    @Test func aWholeAnswerCarriesTheServiceTextUsageAndOrigin() async throws {
        let server = try await TestServer.start()
        let r = try await server.exchange(HTTP.post(HTTP.chat("hello there", extra: #","namespace":"docs","cache_tags":["b","a"]"#)))
        #expect(r.status == 200, "\(r.text)")
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.json?["object"] as? String == "chat.completion")
        #expect((r.json?["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        #expect(r.json?["model"] as? String == "scripted-model")
        let choice = try #require((r.json?["choices"] as? [[String: Any]])?.first)
        #expect((choice["message"] as? [String: Any])?["content"] as? String == ScriptedService.pieces.joined())
        #expect(choice["finish_reason"] as? String == "length")
        let usage = r.json?["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == 5)
        #expect(usage?["completion_tokens"] as? Int == ScriptedService.pieces.count)
        #expect(usage?["total_tokens"] as? Int == 5 + ScriptedService.pieces.count)
        #expect(Self.outpost(r)["gateway"] as? String == "gw-scripted")
        #expect(Self.outpost(r)["cached"] as? Bool == false)
        // The query as the door handed it over.
        let query = try #require(server.service.record.withLock { $0.queries.last })
        #expect(query.messages.map(\.content) == ["hello there"])
        #expect(query.namespace == "docs")
        #expect(query.tags == ["a", "b"])

        let completion = try await server.exchange(HTTP.post("/v1/completions", #"{"prompt":"The sky is","max_tokens":4}"#))
        #expect(completion.status == 200, "\(completion.text)")
        #expect(completion.json?["object"] as? String == "text_completion")
        #expect((completion.json?["id"] as? String)?.hasPrefix("cmpl-") == true)
        #expect((completion.json?["choices"] as? [[String: Any]])?.first?["text"] as? String == ScriptedService.pieces.joined())
        #expect(server.service.record.withLock { $0.queries.last?.sampling.maxTokens } == 4)
        await server.stop()
    }

    /// Fields a request leaves out take the service's sampling defaults when it has them (a
    /// fleet config), else the server's configured ones.
    @Test func omittedFieldsTakeTheServiceDefaultsOverTheConfiguredOnes() async throws {
        let fleet = ScriptedService(samplingDefaults: SamplingParameters(temperature: 0.25, topK: 9, maxTokens: 33))
        let server = try await TestServer.start(service: fleet) { $0.defaults = SamplingParameters(temperature: 0.9, maxTokens: 77) }
        _ = try await server.exchange(HTTP.post(HTTP.chat("hi")))
        let sampling = try #require(fleet.record.withLock { $0.queries.last?.sampling })
        #expect(sampling.temperature == 0.25 && sampling.topK == 9 && sampling.maxTokens == 33)
        _ = try await server.exchange(HTTP.post(HTTP.chat("hi", extra: #","max_tokens":12"#)))
        #expect(fleet.record.withLock { $0.queries.last?.sampling.maxTokens } == 12)
        await server.stop()

        let plain = try await TestServer.start { $0.defaults = SamplingParameters(temperature: 0.9, maxTokens: 77) }
        _ = try await plain.exchange(HTTP.post(HTTP.chat("hi")))
        let configured = try #require(plain.service.record.withLock { $0.queries.last?.sampling })
        #expect(configured.temperature == 0.9 && configured.maxTokens == 77)
        await plain.stop()
    }

    @Test func adminEndpointsAnswerFromTheAdminService() async throws {
        let server = try await TestServer.start()
        let health = try await server.exchange(HTTP.get("/health"))
        #expect(health.status == 200)
        #expect(health.json?["model_fingerprint"] as? String == "scripted-fingerprint")
        #expect(health.json?["config_version"] as? Int == 3)
        server.service.record.withLock { $0.ready = false }
        #expect(try await server.exchange(HTTP.get("/health")).status == 503)

        let models = try await server.exchange(HTTP.get("/v1/models"))
        #expect((models.json?["data"] as? [[String: Any]])?.first?["id"] as? String == "scripted-model")

        let stats = try await server.exchange(HTTP.get("/v1/cache/stats"))
        #expect(stats.json?["hits"] as? Int == 11 && stats.json?["misses"] as? Int == 4, "\(stats.text)")

        let invalidated = try await server.exchange(HTTP.post("/v1/cache/invalidate", #"{"tag":"fleet-a"}"#))
        #expect(invalidated.status == 200, "\(invalidated.text)")
        #expect(invalidated.json?["invalidated"] as? String == "tag fleet-a")
        #expect(invalidated.json?["hlc"] as? String == "0000000000000042")
        #expect(invalidated.json?["durable"] as? Bool == true)
        #expect(server.service.record.withLock { $0.invalidations } == [.tag("fleet-a")])

        let metrics = try await server.exchange(HTTP.get("/metrics"))
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(metrics.text.contains("outpost_scripted_answers_total 0"), "\(metrics.text)")
        #expect(metrics.text.contains("outpost_localapi_connections{kind=\"normal\"} "), "\(metrics.text)")
        await server.stop()
    }
}
