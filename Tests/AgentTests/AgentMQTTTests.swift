#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OutpostTesting
import Testing

/// The real agent (`outpost run --mqtt …`) in a fleet of two on a real `mosquitto`: asked over MQTT
/// with the stock clients, invalidating through one gateway's socket reaches the other.
@Suite(.serialized) struct AgentMQTTTests {
    static let question = #"{"messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":8}"#

    /// Runs a mosquitto client tool to completion and returns its stdout.
    static func tool(_ name: String, _ arguments: [String], in dir: TemporaryDirectory, timeout: Double = 60) throws -> String {
        let out = dir.file("\(name)-\(UUID().uuidString.prefix(6)).out").path
        let p = try ChildProcess(executable: "/usr/bin/\(name)", arguments: arguments, stdoutPath: out)
        let status = try #require(p.wait(timeout: timeout), "\(name) did not finish")
        #expect(ChildProcess.exitCode(status) == 0, "\(name) \(arguments)")
        return (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }

    static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    @Test func aFleetOfTwoAnswersOverMQTTAndSharesInvalidations() throws {
        let broker = try MosquittoBroker()
        let dir = try TemporaryDirectory(prefix: "outpost-fleet")
        defer { dir.remove() }
        let a = try AgentProcess(extraArguments: ["--mqtt", broker.url, "--fleet", "site", "--id", "gw-a"])
        let b = try AgentProcess(configJSON: #"{"mqtt":{"url":"\#(broker.url)","fleet":"site"},"gateway_id":"gw-b"}"#)
        for agent in [a, b] {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, (try agent.curl(["/health"]).json?["broker"] as? String) != "connected" { usleep(50_000) }
            #expect(try agent.curl(["/health"]).json?["broker"] as? String == "connected")
        }
        usleep(1_000_000)  // subscriptions in place (SUBACKs follow the CONNACK that /health reports)

        // v5 request/response with mosquitto_rr, twice: computed, then from the cache.
        let rr = ["-V", "5", "-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-W", "60",
                  "-t", "outpost/site/gw/gw-a/req", "-e", "replies/test", "-m", Self.question]
        let first = try #require(Self.json(try Self.tool("mosquitto_rr", rr, in: dir)))
        let content = ((first["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(content?.isEmpty == false)
        let firstInfo = first["outpost"] as? [String: Any] ?? [:]
        #expect(firstInfo["cached"] as? Bool == false)
        #expect(firstInfo["gateway"] as? String == "gw-a")
        let key = try #require(firstInfo["cache_key"] as? String)
        let second = try #require(Self.json(try Self.tool("mosquitto_rr", rr, in: dir)))
        #expect((second["outpost"] as? [String: Any])?["cached"] as? Bool == true)

        // b has the same answer cached (same model, same key) after one request on its socket.
        let viaB = try b.post("/v1/chat/completions", json: Self.question)
        #expect((viaB.json?["outpost"] as? [String: Any])?["cache_key"] as? String == key)
        #expect((try b.post("/v1/chat/completions", json: Self.question).json?["outpost"] as? [String: Any])?["cached"] as? Bool == true)

        // Invalidate on a: b drops it too.
        #expect(try a.post("/v1/cache/invalidate", json: "{\"key\":\"\(key)\"}").status == 200)
        var dropped = false
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !dropped {
            let stats = try b.curl(["/v1/cache/stats"]).json ?? [:]
            dropped = (stats["invalidations_applied"] as? Int ?? 0) >= 1
            if !dropped { usleep(20_000) }
        }
        #expect(dropped)
        #expect((try b.post("/v1/chat/completions", json: Self.question).json?["outpost"] as? [String: Any])?["cached"] as? Bool == false)

        // PeerSync's counters are in /metrics.
        let metrics = try b.curl(["/metrics"]).body
        func gauge(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(gauge("outpost_mqtt_connected") == 1)
        #expect((gauge("outpost_mqtt_invalidations_applied") ?? 0) >= 1)

        // Retained status, then offline after a graceful stop.
        let sub = ["-V", "5", "-h", "127.0.0.1", "-p", "\(broker.port)", "-C", "1", "-W", "10", "-t", "outpost/site/gw/gw-a/status"]
        let online = try #require(Self.json(try Self.tool("mosquitto_sub", sub, in: dir)))
        #expect(online["state"] as? String == "online")
        #expect((online["model_fingerprint"] as? String)?.isEmpty == false)
        #expect(a.stop() == 0)
        let offline = try #require(Self.json(try Self.tool("mosquitto_sub", sub, in: dir)))
        #expect(offline["state"] as? String == "offline")
        #expect(b.stop() == 0)
    }

    @Test func withoutMQTTTheAgentRunsLocalOnly() throws {
        let agent = try AgentProcess()
        #expect(try agent.curl(["/health"]).json?["broker"] as? String == "disabled")
        #expect(agent.stop() == 0)
    }

    @Test func mqttFlagsWithoutAFleetAreRefused() throws {
        #expect(throws: (any Error).self) {
            _ = try AgentProcess(extraArguments: ["--mqtt", "mqtt://127.0.0.1:1"])
        }
    }
}
