#if canImport(Glibc)
import Glibc
#endif
import FleetConfig
import Foundation
import OutpostTesting
import PeerSync
import Synchronization
import Testing
import MQTT

/// Fleet configs delivered over MQTT to running agents (`outpost run --mqtt … --trust-key …`) on a
/// real `mosquitto`: applied live, a gateway's override winning field by field, bad ones rejected
/// with the reason on the retained status topic, a missing model rolled back, and `invalidate`
/// dropping tagged answers here and at a peer. Everything asynchronous is polled (`eventually`).
/// The tests are synchronous, as the other agent tests: they block in `curl` and in polling, which
/// inside an async test would hold one of the (two) cooperative threads the other suites need.
@Suite(.serialized) struct FleetConfigMQTTTests {
    /// A test-side MQTT client: publishes configs and keeps every status message it sees.
    final class Operator: Sendable {
        final class Inbox: Sendable {
            let messages = Mutex<[MQTTMessage]>([])
        }

        let client: MosquittoClient
        let inbox = Inbox()
        private let collector: Task<Void, Never>

        init(broker: MosquittoBroker, fleet: String = "site") throws {
            client = try MosquittoClient(clientID: "op-\(UUID().uuidString.prefix(8))", cleanStart: true)
            let events = client.events
            let inbox = self.inbox
            collector = Task {
                for await e in events {
                    if case .message(let m) = e { inbox.messages.withLock { $0.append(m) } }
                }
            }
            try client.startLoop()
            try client.connect(host: "127.0.0.1", port: broker.port)
            usleep(100_000)
            try client.subscribe("+/+/gw/+/status", qos: 1)
            usleep(100_000)
        }

        deinit {
            collector.cancel()
            try? client.disconnect()
            client.stopLoop()
        }

        func publish(_ topic: String, _ payload: [UInt8], retain: Bool) throws {
            try client.publish(MQTTMessage(topic: topic, payload: payload, qos: 1, retain: retain))
        }

        /// The `config` object of the newest status of `gateway` (under `outpost/site`).
        func config(of gateway: String) -> [String: Any]? {
            status(on: "outpost/site/gw/\(gateway)/status")?["config"] as? [String: Any]
        }

        /// The `config` states `gateway` published for `version`, in order, repeats of one state
        /// (the periodic status refresh) counted once.
        func configStates(of gateway: String, version: Int) -> [String] {
            let topic = "outpost/site/gw/\(gateway)/status"
            let payloads = inbox.messages.withLock { $0.filter { $0.topic == topic }.map(\.payload) }
            var states: [String] = []
            for p in payloads {
                guard let o = (try? JSONSerialization.jsonObject(with: Data(p))) as? [String: Any],
                      let c = o["config"] as? [String: Any], c["version"] as? Int == version,
                      let state = c["state"] as? String, states.last != state else { continue }
                states.append(state)
            }
            return states
        }

        /// The newest status published on `topic`.
        func status(on topic: String) -> [String: Any]? {
            let last = inbox.messages.withLock { $0.last { $0.topic == topic } }
            guard let last else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(last.payload))) as? [String: Any]
        }
    }

    static func eventually(_ what: String, timeout: Double = 60, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        if try condition() { return }
        Issue.record("timed out after \(timeout) s waiting for: \(what)")
        throw CancellationError()
    }

    struct Keys {
        let dir: TemporaryDirectory
        var pub: String { dir.file("keys/fleet.pub").path }

        init(keyID: String = "ops") throws {
            dir = try TemporaryDirectory(prefix: "outpost-fleet-keys")
            let r = try OutpostBinary.run(["config", "keygen", "--out", dir.file("keys").path, "--key-id", keyID])
            #expect(r.status == 0, "\(r.stderr)")
        }

        /// `outpost config sign` of `payload`; returns the envelope's bytes.
        func sign(_ payload: String, version: Int, target: String = "fleet", expires: String? = nil) throws -> [UInt8] {
            let name = UUID().uuidString.prefix(8)
            let cfg = dir.file("\(name).json").path
            try payload.write(toFile: cfg, atomically: true, encoding: .utf8)
            let out = dir.file("\(name).signed.json").path
            var args = ["config", "sign", "--key", dir.file("keys/fleet.key").path, "--version", "\(version)", "--in", cfg,
                        "--out", out, "--target", target]
            if let expires { args += ["--expires", expires] }
            let r = try OutpostBinary.run(args)
            #expect(r.status == 0, "\(r.stderr)")
            return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
        }

        /// Signs `payload` as is, without the checks `outpost config sign` makes (for payloads it refuses).
        func signUnchecked(_ payload: String, version: UInt64) throws -> [UInt8] {
            let key = try SigningKey.load(path: dir.file("keys/fleet.key").path)
            let envelope = try key.sign(payload: Array(payload.utf8), version: version, issuedAt: Int64(Date().timeIntervalSince1970))
            return Array(envelope.encoded())
        }
    }

    static func agent(_ broker: MosquittoBroker, id: String, trust: String?) throws -> AgentProcess {
        var args = ["--mqtt", broker.url, "--fleet", "site", "--id", id]
        if let trust { args += ["--trust-key", trust] }
        let agent = try AgentProcess(extraArguments: args, waitReady: false)
        try agent.waitReady(timeout: 300)
        try eventually("\(id) connected") { try agent.curl(["/health"]).json?["broker"] as? String == "connected" }
        return agent
    }

    static func health(_ agent: AgentProcess) throws -> [String: Any] { try agent.curl(["/health"]).json ?? [:] }

    /// A chat request; returns the response JSON.
    static func ask(_ agent: AgentProcess, _ question: String, fields: String = "") throws -> [String: Any] {
        let r = try agent.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"\#(question)"}]\#(fields)}"#)
        #expect(r.status == 200, "\(r.body)")
        return r.json ?? [:]
    }

    static func completionTokens(_ o: [String: Any]) -> Int? { (o["usage"] as? [String: Any])?["completion_tokens"] as? Int }
    static func cached(_ o: [String: Any]) -> Bool? { (o["outpost"] as? [String: Any])?["cached"] as? Bool }

    static func show(_ agent: AgentProcess) throws -> [String: Any] {
        let r = try OutpostBinary.run(["config", "show", "--state-dir", agent.stateDirectory])
        #expect(r.status == 0, "\(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    static func effective(_ agent: AgentProcess, _ section: String, _ field: String) throws -> Any? {
        ((try show(agent)["config"] as? [String: Any])?[section] as? [String: Any])?[field]
    }

    @Test func retainedConfigsAreAppliedLiveAndTheGatewayOverrideWinsFieldByField() throws {
        let broker = try MosquittoBroker()
        let keys = try Keys()
        defer { keys.dir.remove() }
        let op = try Operator(broker: broker)
        let a = try Self.agent(broker, id: "gw-a", trust: keys.pub)
        let story = "Write a long story about a dragon and a knight."

        // Fleet config, published retained before… and applied by the running agent.
        let fleet1 = try keys.sign(#"{"generation":{"max_tokens":5},"cache":{"ttl_s":600}}"#, version: 1)
        try op.publish("outpost/site/config", fleet1, retain: true)
        try Self.eventually("gw-a reports fleet config 1 applied") {
            op.config(of: "gw-a")?["state"] as? String == "applied" && op.config(of: "gw-a")?["version"] as? Int == 1
        }
        // Every step went out on the retained status as it happened, the outcome last.
        #expect(op.configStates(of: "gw-a", version: 1) == ["validating", "persisted", "switching", "health_check", "applied"])
        #expect(try Self.health(a)["config_version"] as? Int == 1)
        // generation.max_tokens is the live default for requests that leave it out.
        #expect(Self.completionTokens(try Self.ask(a, story)) == 5)

        // This gateway's override: its max_tokens wins, the fleet's ttl stays.
        let gw1 = try keys.sign(#"{"generation":{"max_tokens":3}}"#, version: 1, target: "gw-a")
        try op.publish("outpost/site/gw/gw-a/config", gw1, retain: true)
        try Self.eventually("gw-a reports its gateway config applied") {
            op.config(of: "gw-a")?["source"] as? String == "gateway" && op.config(of: "gw-a")?["state"] as? String == "applied"
        }
        #expect(Self.completionTokens(try Self.ask(a, story + " Please.")) == 3)

        // A newer fleet config: its new ttl is taken, its max_tokens still loses to the override.
        // Its cache budgets and flush settings resize the running cache: nothing waits for a restart.
        let fleet2 = try keys.sign(#"{"generation":{"max_tokens":7},"cache":{"ttl_s":900,"batch_size":64,"#
            + #""memory_budget_mb":3,"disk_budget_mb":5,"flush_interval_ms":250,"queue_capacity":1000}}"#, version: 2)
        try op.publish("outpost/site/config", fleet2, retain: true)
        try Self.eventually("gw-a reports fleet config 2 applied") {
            op.config(of: "gw-a")?["version"] as? Int == 2 && op.config(of: "gw-a")?["state"] as? String == "applied"
        }
        #expect(try Self.health(a)["config_version"] as? Int == 2)
        #expect(op.config(of: "gw-a")?["restart_required"] as? [String] == [])
        let limits = try a.curl(["/v1/cache/stats"]).json ?? [:]
        #expect(limits["batch_size"] as? Int == 64, "\(limits)")
        #expect(limits["memory_budget_bytes"] as? Int == 3 << 20)
        #expect(limits["disk_budget_bytes"] as? Int == 5 << 20)
        #expect(limits["flush_interval_ms"] as? Int == 250)
        #expect(limits["queue_capacity"] as? Int == 1000)
        #expect(Self.completionTokens(try Self.ask(a, story + " Thanks.")) == 3)
        #expect(try Self.effective(a, "cache", "ttl_s") as? Int == 900)
        #expect(try Self.effective(a, "generation", "max_tokens") as? Int == 3)

        // Restarted: the retained configs come again on the new subscription and are no-ops (no
        // rejection reported, the status says applied, both versions stay).
        #expect(a.stop() == 0)
        try a.start(waitReady: false)
        try a.waitReady(timeout: 300)
        try Self.eventually("the retained configs redelivered to the restarted gw-a") {
            let metrics = try a.curl(["/metrics"]).body
            return metrics.contains(#"outpost_agent_fleet_configs_total{outcome="redelivered"} 2"#)
        }
        #expect(!a.log().contains("fleet config not applied"), "\(a.log())")
        #expect(try Self.health(a)["config_version"] as? Int == 2)
        try Self.eventually("the restarted gw-a's status says applied") { op.config(of: "gw-a")?["state"] as? String == "applied" }
        #expect(Self.completionTokens(try Self.ask(a, story + " Again.")) == 3)
        #expect(a.stop() == 0)
    }

    @Test func badConfigsAreRejectedWithTheReasonAndAMissingModelIsRolledBackWhileTheAgentAnswers() throws {
        let broker = try MosquittoBroker()
        let keys = try Keys()
        let other = try Keys()  // same key id, another key: a forged signature
        defer { keys.dir.remove(); other.dir.remove() }
        let op = try Operator(broker: broker)
        let a = try Self.agent(broker, id: "gw-a", trust: keys.pub)
        let topic = "outpost/site/config"

        let good = try keys.sign(#"{"generation":{"max_tokens":4}}"#, version: 1)
        try op.publish(topic, good, retain: true)
        try Self.eventually("config 1 applied") { try Self.health(a)["config_version"] as? Int == 1 }

        let oversized = Array(#"{"version":2,"payload":""#.utf8) + [UInt8](repeating: UInt8(ascii: "A"), count: 300 * 1024)
            + Array(#""}"#.utf8)
        let cases: [(String, [UInt8], String)] = [
            ("garbage", Array("garbage".utf8), "malformed"),
            ("forged", try other.sign(#"{"generation":{"max_tokens":9}}"#, version: 2), "bad_signature"),
            ("replayed", good, "replay"),
            ("oversized", oversized, "oversized"),
            ("another gateway's", try keys.sign(#"{"generation":{"max_tokens":9}}"#, version: 2, target: "gw-z"), "wrong_target"),
            ("unknown key", try keys.signUnchecked(#"{"generation":{"max_tokenz":9}}"#, version: 2), "unknown_key"),
            // Rolled back, and its version counts as taken: the next one must be newer still.
            ("missing model", try keys.sign(#"{"model":{"path":"/nonexistent/model.gguf"}}"#, version: 3), "health_check"),
            ("downgraded", try keys.sign(#"{"generation":{"max_tokens":9}}"#, version: 2), "downgrade"),
        ]
        for (what, payload, reason) in cases {
            // Not retained: a new publication, as an attacker's or a mistaken one would be. Each
            // reason differs from the one before, so the status is known to be about this one.
            try op.publish(topic, payload, retain: false)
            try Self.eventually("the \(what) config reported as \(reason)") { op.config(of: "gw-a")?["reason"] as? String == reason }
            let status = op.config(of: "gw-a") ?? [:]
            #expect(status["state"] as? String == (what == "missing model" ? "rolled_back" : "rejected"), "\(what): \(status)")
            if what == "missing model" {
                // Switched to, then its health check (the model loads and answers) failed: rolled back.
                #expect(op.configStates(of: "gw-a", version: 3) == ["validating", "persisted", "switching", "health_check", "rolled_back"])
            }
            #expect((status["error"] as? String)?.isEmpty == false)
            #expect(try Self.health(a)["config_version"] as? Int == 1, "\(what)")
            #expect(Self.completionTokens(try Self.ask(a, "Tell me about \(what) things.")) == 4, "\(what)")
        }
        // Expired: signed to expire in a second, published after.
        let expiring = try keys.sign(#"{"generation":{"max_tokens":9}}"#, version: 4, expires: "1")
        sleep(2)
        try op.publish(topic, expiring, retain: false)
        try Self.eventually("the expired config reported") { op.config(of: "gw-a")?["reason"] as? String == "expired" }
        #expect(try Self.health(a)["config_version"] as? Int == 1)

        // A good newer one after all that is still applied; a model swap to another file is live.
        let model = try TestModel.path()
        let link = a.directory.file("swapped.gguf").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: model)
        try op.publish(topic, try keys.sign(#"{"model":{"path":"\#(link)"},"generation":{"max_tokens":2}}"#, version: 5),
                       retain: true)
        try Self.eventually("config 5 applied") { try Self.health(a)["config_version"] as? Int == 5 }
        let models = try a.curl(["/v1/models"]).json?["data"] as? [[String: Any]]
        #expect(models?.first?["id"] as? String == "swapped")
        #expect(Self.completionTokens(try Self.ask(a, "Tell me about dragons.")) == 2)
        #expect(a.stop() == 0)
    }

    @Test func invalidateInAConfigDropsTaggedAnswersHereAndAtAPeer() throws {
        let broker = try MosquittoBroker()
        let keys = try Keys()
        defer { keys.dir.remove() }
        let op = try Operator(broker: broker)
        let a = try Self.agent(broker, id: "gw-a", trust: keys.pub)
        let b = try Self.agent(broker, id: "gw-b", trust: nil)  // trusts no key: only the sync reaches it
        let tagged = #","max_tokens":4,"cache_tags":["kb-v1"]"#
        let untagged = #","max_tokens":4"#
        for agent in [a, b] {
            _ = try Self.ask(agent, "What is the capital of France?", fields: tagged)
            #expect(Self.cached(try Self.ask(agent, "What is the capital of France?", fields: tagged)) == true)
        }
        _ = try Self.ask(a, "What is the capital of Italy?", fields: untagged)

        try op.publish("outpost/site/config", try keys.sign(#"{"invalidate":{"tags":["kb-v1"]}}"#, version: 1), retain: true)
        try Self.eventually("gw-a applied the config") { try Self.health(a)["config_version"] as? Int == 1 }
        try Self.eventually("gw-b refused it (no trusted key)") { op.config(of: "gw-b")?["reason"] as? String == "untrusted_key" }
        try Self.eventually("the invalidation reached gw-b") {
            try b.curl(["/v1/cache/stats"]).json?["invalidations_applied"] as? Int ?? 0 >= 1
        }
        #expect(Self.cached(try Self.ask(a, "What is the capital of France?", fields: tagged)) == false)
        #expect(Self.cached(try Self.ask(b, "What is the capital of France?", fields: tagged)) == false)
        #expect(Self.cached(try Self.ask(a, "What is the capital of Italy?", fields: untagged)) == true)

        // Applied once: the retained config redelivered after a restart invalidates nothing again.
        _ = try Self.ask(a, "What is the capital of France?", fields: tagged)
        #expect(a.stop() == 0)
        try a.start(waitReady: false)
        try a.waitReady(timeout: 300)
        try Self.eventually("the retained config redelivered") {
            try a.curl(["/metrics"]).body.contains(#"outpost_agent_fleet_configs_total{outcome="redelivered"} 1"#)
        }
        #expect(Self.cached(try Self.ask(a, "What is the capital of France?", fields: tagged)) == true)
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
    }

    @Test func aConfigMovingTheTopicRootMovesTheGatewayLive() throws {
        let broker = try MosquittoBroker()
        let keys = try Keys()
        defer { keys.dir.remove() }
        let op = try Operator(broker: broker)
        let a = try Self.agent(broker, id: "gw-a", trust: keys.pub)
        let dir = try TemporaryDirectory(prefix: "outpost-root")
        defer { dir.remove() }

        try op.publish("outpost/site/config", try keys.sign(#"{"mqtt":{"topic_root":"fleets/b"}}"#, version: 1), retain: true)
        try Self.eventually("the status under the new root says config 1 applied") {
            let status = op.status(on: "fleets/b/gw/gw-a/status")
            let config = status?["config"] as? [String: Any]
            return status?["state"] as? String == "online" && config?["version"] as? Int == 1
                && config?["state"] as? String == "applied"
        }
        try Self.eventually("the old root's status says offline") {
            op.status(on: "outpost/site/gw/gw-a/status")?["state"] as? String == "offline"
        }
        try Self.eventually("connected again") { try Self.health(a)["broker"] as? String == "connected" }

        // Asked under the new root: answered.
        let rr = ["-V", "5", "-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-W", "60",
                  "-t", "fleets/b/gw/gw-a/req", "-e", "replies/root", "-m", #"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3}"#]
        let reply = AgentMQTTTests.json(try AgentMQTTTests.tool("mosquitto_rr", rr, in: dir))
        #expect((reply?["outpost"] as? [String: Any])?["gateway"] as? String == "gw-a", "\(reply ?? [:])")

        // Configs now come from the new root.
        try op.publish("fleets/b/config", try keys.sign(#"{"mqtt":{"topic_root":"fleets/b"},"generation":{"max_tokens":2}}"#, version: 2),
                       retain: true)
        try Self.eventually("config 2 from the new root applied") { try Self.health(a)["config_version"] as? Int == 2 }
        #expect(Self.completionTokens(try Self.ask(a, "Tell me about dragons.")) == 2)

        // After a restart the committed root is used from the start.
        #expect(a.stop() == 0)
        try a.start(waitReady: false)
        try a.waitReady(timeout: 300)
        try Self.eventually("connected after the restart") { try Self.health(a)["broker"] as? String == "connected" }
        let again = AgentMQTTTests.json(try AgentMQTTTests.tool("mosquitto_rr", rr, in: dir))
        #expect((again?["outpost"] as? [String: Any])?["gateway"] as? String == "gw-a", "\(again ?? [:])")
        #expect(a.stop() == 0)
    }
}
