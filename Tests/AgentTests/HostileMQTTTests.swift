#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OutpostTesting
import PeerSync
import Synchronization
import Testing
import MQTT

/// Issue 17's MQTT attacks against the real agent (`outpost run --mqtt …`) on a real `mosquitto`:
/// replies aimed at control topics, a second question under the same correlation, a redelivery,
/// expired v5 requests, and the broker and session going away — each must be handled and logged.
/// Synchronous, as the other agent tests (they block in `curl` and in polling, which in an async
/// test would hold one of the two cooperative threads the other suites need); the probes collect
/// messages on libmosquitto's own thread.
@Suite(.serialized) struct HostileMQTTTests {
    static let root = "outpost/site"
    static let gateway = "gw-a"

    /// A plain MQTT client that collects every message it receives (on libmosquitto's thread).
    final class Probe: Sendable {
        final class Inbox: Sendable {
            let messages = Mutex<[MQTTMessage]>([])
        }

        let client: MosquittoClient
        let inbox = Inbox()

        init(_ broker: MosquittoBroker, version: MosquittoClient.ProtocolVersion = .v5, subscribe: [String]) throws {
            let inbox = self.inbox
            client = try MosquittoClient(clientID: "probe-\(UUID().uuidString.prefix(8))", cleanStart: true, protocolVersion: version,
                                         observer: { event in
                                             if case .message(let m) = event { inbox.messages.withLock { $0.append(m) } }
                                             return []
                                         })
            try client.startLoop()
            try client.connect(host: "127.0.0.1", port: broker.port)
            usleep(50_000)
            for t in subscribe { try client.subscribe(t, qos: 1) }
            usleep(150_000)
        }

        deinit {
            try? client.disconnect()
            client.stopLoop()
        }

        func publish(_ topic: String, _ payload: String, responseTopic: String? = nil, correlation: [UInt8]? = nil,
                     expiry: UInt32? = nil) throws {
            try client.publish(MQTTMessage(topic: topic, payload: Array(payload.utf8), qos: 1, responseTopic: responseTopic,
                                           correlationData: correlation, messageExpiryInterval: expiry))
        }

        func received(on topic: String? = nil) -> [MQTTMessage] {
            inbox.messages.withLock { $0 }.filter { topic == nil || $0.topic == topic }
        }

        func json(on topic: String) -> [[String: Any]] { received(on: topic).compactMap { Self.json($0.payload) } }

        static func json(_ payload: [UInt8]) -> [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any]
        }
    }

    static func chat(_ q: String, maxTokens: Int = 8, extra: String = "") -> String {
        "{\"messages\":[{\"role\":\"user\",\"content\":\"\(q)\"}],\"max_tokens\":\(maxTokens)\(extra)}"
    }

    static func content(_ reply: [String: Any]) -> String? {
        ((reply["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
    }

    /// A reply as a gateway writes it (requests carry none of these).
    static func isReply(_ m: MQTTMessage) -> Bool {
        guard let o = Probe.json(m.payload) else { return false }
        return o["done"] != nil || o["choices"] != nil || o["completion_id"] != nil
    }

    static func waitUntil(_ what: String, timeout: Double = 60, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(20_000)
        }
        if try condition() { return }
        Issue.record("timed out after \(timeout) s waiting for: \(what)")
        throw CancellationError()
    }

    /// An agent in fleet `site` as gw-a, connected and subscribed.
    static func agent(_ broker: MosquittoBroker, extra: [String] = []) throws -> AgentProcess {
        let agent = try AgentProcess(extraArguments: ["--mqtt", broker.url, "--fleet", "site", "--id", gateway] + extra)
        try waitUntil("connected", timeout: 20) { (try agent.curl(["/health"]).json?["broker"] as? String) == "connected" }
        // The SUBACKs follow the CONNACK that /health reports: the agent logs them.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !agent.log().contains("subscribed") { usleep(20_000) }
        return agent
    }

    static func metric(_ agent: AgentProcess, _ name: String) throws -> Double? {
        try agent.curl(["/metrics"]).body.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    static func logLines(_ agent: AgentProcess, _ message: String) -> [Substring] {
        agent.log().split(separator: "\n").filter { $0.contains(message) }
    }

    @Test func repliesAimedAtControlTopicsAreNeverPublished() throws {
        let broker = try MosquittoBroker()
        let agent = try Self.agent(broker)
        let root = Self.root, gw = Self.gateway
        let watcher = try Probe(broker, subscribe: ["#"])
        try Self.waitUntil("retained status") { !watcher.json(on: "\(root)/gw/\(gw)/status").isEmpty }
        let before = try #require(watcher.json(on: "\(root)/gw/\(gw)/status").last)

        let control = ["\(root)/config", "\(root)/gw/\(gw)/config", "\(root)/cache/invalidate", "\(root)/gw/\(gw)/status",
                       "\(root)/cache/watermark/\(gw)", "\(root)/cache/watermark/gw-b", "\(root)/req", "\(root)/gw/\(gw)/req",
                       "\(root)/gw/gw-b/status", "outpost/other/config", "outpost/other/gw/x/status"]
        let notTopics = ["replies/+", "replies/#", "#", "$SYS/broker/x", "$share/site/replies/x"]
        let client = try Probe(broker, subscribe: [])
        var tried = 0
        for (i, topic) in (control + notTopics).enumerated() {
            try client.publish("\(root)/gw/\(gw)/req", Self.chat("Say \(i)"), responseTopic: topic, correlation: [UInt8(i)])
            try client.publish("\(root)/req", Self.chat("Say \(i)", extra: ",\"reply_to\":\"\(topic)\",\"id\":\"q\(i)\""))
            tried += 2
        }
        try client.publish("\(root)/req", Self.chat("Say", extra: ",\"reply_to\":\"\""))
        tried += 1
        // The same agent answers a request that names a proper reply topic.
        let good = try Probe(broker, subscribe: ["replies/good"])
        try good.publish("\(root)/gw/\(gw)/req", Self.chat("What is the capital of France?", maxTokens: 4),
                         responseTopic: "replies/good", correlation: [42])
        try Self.waitUntil("the good request answered") { !good.received(on: "replies/good").isEmpty }
        usleep(500_000)

        let misplaced = watcher.received().filter { $0.topic != "replies/good" && Self.isReply($0) }
        #expect(misplaced.isEmpty, "replies published on \(Set(misplaced.map(\.topic)))")
        print("hostile MQTT: replies under control topics \(misplaced.count) of \(tried) requests with hostile reply topics")
        #expect(good.received(on: "replies/good").count == 1)
        // Requests are taken in order: those before the good one are all counted by now.
        #expect(try Self.metric(agent, "outpost_mqtt_reply_topics_refused") == Double(tried))
        // The retained status is still the gateway's own: no rejected "config" made of a reply.
        let after = try Probe(broker, subscribe: ["\(root)/gw/\(gw)/status"])
        try Self.waitUntil("retained status") { !after.json(on: "\(root)/gw/\(gw)/status").isEmpty }
        let status = try #require(after.json(on: "\(root)/gw/\(gw)/status").first)
        #expect(status["state"] as? String == "online")
        #expect("\(status["config"] ?? "nil")" == "\(before["config"] ?? "nil")")
        #expect(status["choices"] == nil && status["error"] == nil)
        // Counted by reason, and logged (within the rate limit).
        #expect(try Self.metric(agent, "outpost_mqtt_reply_topics_refused_fleet_topic") == Double(2 * 9))
        #expect(try Self.metric(agent, "outpost_mqtt_reply_topics_refused_control_topic") == 4)
        #expect(try Self.metric(agent, "outpost_mqtt_reply_topics_refused_wildcard") == 6)
        #expect(try Self.metric(agent, "outpost_mqtt_reply_topics_refused_system") == 4)
        #expect(try Self.metric(agent, "outpost_mqtt_reply_topics_refused_empty") == 1)
        let lines = Self.logLines(agent, "reply topic refused")
        #expect(lines.count >= 1 && lines.count <= 10, "\(lines.count) lines")
        #expect(lines.first?.contains("reason=fleet_topic") == true, "\(lines.first ?? "")")
        #expect(agent.stop() == 0)
    }

    @Test func aSecondQuestionUnderTheSameIDIsAnsweredAndARedeliveryOnce() throws {
        let broker = try MosquittoBroker()
        let agent = try Self.agent(broker)
        // The README's v3.1.1 example, run with two questions under the same id.
        let me = try Probe(broker, version: .v311, subscribe: ["replies/me"])
        let ask = { (q: String) in
            try me.publish("\(Self.root)/gw/\(Self.gateway)/req", Self.chat(q, extra: ",\"reply_to\":\"replies/me\",\"id\":\"q1\""))
        }
        try ask("When does the depot open?")
        try ask("Where is the depot?")
        try Self.waitUntil("both answered") { me.json(on: "replies/me").count == 2 }
        #expect(me.json(on: "replies/me").allSatisfy { $0["id"] as? String == "q1" && Self.content($0) != nil })
        // The same message twice, as a QoS 1 redelivery looks: answered once.
        try ask("Where is the depot?")
        try ask("Where is the depot?")
        try Self.waitUntil("duplicate counted", timeout: 10) { try Self.metric(agent, "outpost_mqtt_requests_duplicate") == 2 }
        usleep(500_000)
        #expect(me.json(on: "replies/me").count == 2)
        #expect(agent.stop() == 0)
    }

    @Test func expiredRequestsAreNotAnsweredAndTheirGenerationIsCancelled() throws {
        let broker = try MosquittoBroker()
        let agent = try Self.agent(broker)
        let p = try Probe(broker, subscribe: ["replies/x"])
        let topic = "\(Self.root)/gw/\(Self.gateway)/req"
        // A: long and not cacheable (sampled, no seed: about 450 tokens, 4 s on two x86 cores),
        // 1 s to live: it expires while generating.
        let sent = Date()
        try p.publish(topic, Self.chat("Tell me a long story about a lighthouse.", maxTokens: 900,
                                       extra: ",\"temperature\":1.5,\"top_k\":200,\"top_p\":1.0"),
                      responseTopic: "replies/x", correlation: [1], expiry: 1)
        // C: 1 s to live, queued behind A for the model: it expires waiting.
        try p.publish(topic, Self.chat("What is two plus two?"), responseTopic: "replies/x", correlation: [3], expiry: 1)
        // B: no expiry, queued too: answered once the model is free.
        try p.publish(topic, Self.chat("What is the capital of France?", maxTokens: 4), responseTopic: "replies/x", correlation: [2])
        try Self.waitUntil("B answered") { p.received(on: "replies/x").contains { $0.correlationData == [2] } }
        let answeredAfter = Date().timeIntervalSince(sent)
        usleep(1_000_000)
        #expect(p.received(on: "replies/x").allSatisfy { $0.correlationData == [2] }, "expired requests were answered")
        #expect(try Self.metric(agent, "outpost_mqtt_requests_expired") == 2)
        let b = try #require(p.json(on: "replies/x").first)
        let queueMs = ((b["outpost"] as? [String: Any])?["timings"] as? [String: Any])?["queue_ms"] as? Double ?? -1
        // The expiry was logged with how long past its deadline the model let go.
        let lines = Self.logLines(agent, "MQTT request expired")
        #expect(lines.count == 2, "\(lines)")
        let overdue = lines.compactMap { line -> Int? in
            line.split(separator: " ").first { $0.hasPrefix("overdue_ms=") }.flatMap { Int($0.dropFirst("overdue_ms=".count)) }
        }
        // A, cancelled mid-generation, lets go within a decode step or so; C, cancelled while queued,
        // is released when the model is free (the scheduler drops it at its turn), i.e. soon after A.
        #expect(overdue.count == 2 && (overdue.min() ?? .max) < 1_000 && (overdue.max() ?? .max) < 3_000, "\(lines)")
        // B waited for the model only until A was cancelled (A alone would take several seconds).
        #expect(answeredAfter < 3, "B answered after \(answeredAfter) s")
        print("hostile MQTT: expired while generating, model freed \(overdue) ms after the deadlines; "
              + "the next request waited \(Int(queueMs)) ms for the model, answered \(String(format: "%.2f", answeredAfter)) s after A was sent")
        #expect(agent.stop() == 0)
    }

    @Test func aBrokerThatForgetsTheSessionIsLoggedWithTheCacheItCost() throws {
        let broker = try MosquittoBroker()
        let agent = try Self.agent(broker)
        let p = try Probe(broker, subscribe: ["replies/x"])
        for (i, q) in ["What is the capital of France?", "What is the capital of Italy?"].enumerated() {
            try p.publish("\(Self.root)/req", Self.chat(q, maxTokens: 4), responseTopic: "replies/x", correlation: [UInt8(i)])
        }
        try Self.waitUntil("answered") { p.received(on: "replies/x").count == 2 }
        try Self.waitUntil("stored", timeout: 10) { (try agent.curl(["/v1/cache/stats"]).json?["entries"] as? Int) == 2 }

        // Killed and restarted without persistence: the connection drops, and the session is gone.
        broker.kill()
        try Self.waitUntil("loss logged", timeout: 10) { !Self.logLines(agent, "broker connection lost").isEmpty }
        try broker.start()
        try Self.waitUntil("resubscription logged", timeout: 20) { !Self.logLines(agent, "resubscribed").isEmpty }
        let lost = Self.logLines(agent, "broker connection lost")
        let back = Self.logLines(agent, "broker reconnected")
        let session = Self.logLines(agent, "broker session lost")
        let dropped = Self.logLines(agent, "answer cache dropped")
        #expect(lost.count == 1 && lost[0].contains("losses=1"), "\(lost)")
        #expect(back.count == 1 && back[0].contains("session_present=false") && back[0].contains("down_ms="), "\(back)")
        #expect(session.count == 1 && session[0].contains("reason=session_not_present"), "\(session)")
        #expect(dropped.count == 1 && dropped[0].contains("reason=session_lost") && dropped[0].contains("entries=2"), "\(dropped)")
        #expect(try agent.curl(["/v1/cache/stats"]).json?["entries"] as? Int == 0)
        try Self.waitUntil("connected again", timeout: 10) { (try agent.curl(["/health"]).json?["broker"] as? String) == "connected" }
        #expect(agent.stop() == 0)
    }

    /// Attack 1 as the issue ran it, against an agent that trusts a fleet key: an anonymous
    /// `scope: all`, a forged sequence gap and a forged watermark change nothing (and are logged);
    /// the operator's invalidation, signed with the fleet key by `outpost cache invalidate
    /// --fleet-key`, is applied. The status and `outpost member key` show the same member key.
    @Test func forgedInvalidationsAreRefusedAndTheOperatorsInvalidationIsApplied() throws {
        let broker = try MosquittoBroker()
        let keys = try TemporaryDirectory(prefix: "outpost-fleet-keys")
        let keygen = try OutpostBinary.run(["config", "keygen", "--out", keys.path, "--key-id", "ops"])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let p = try Probe(broker, subscribe: ["\(Self.root)/gw/\(Self.gateway)/status", "replies/x"])
        let agent = try Self.agent(broker, extra: ["--trust-key", keys.file("fleet.pub").path])
        try Self.waitUntil("status announced") {
            p.json(on: "\(Self.root)/gw/\(Self.gateway)/status").last?["invalidation_auth"] as? String == "signed"
        }
        let announced = (p.json(on: "\(Self.root)/gw/\(Self.gateway)/status").last?["member"] as? [String: Any])?["key"] as? String
        let shown = try OutpostBinary.run(["member", "key", "--state-dir", agent.stateDirectory, "--id", Self.gateway, "--json"])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(announced != nil && Probe.json(Array(shown.stdout.utf8))?["key"] as? String == announced)
        #expect(!Self.logLines(agent, "invalidations authenticated").isEmpty)

        for (i, q) in ["What is the capital of France?", "What is the capital of Italy?"].enumerated() {
            try p.publish("\(Self.root)/req", Self.chat(q, maxTokens: 4), responseTopic: "replies/x", correlation: [UInt8(i)])
        }
        try Self.waitUntil("answered") { p.received(on: "replies/x").count == 2 }
        try Self.waitUntil("stored", timeout: 10) { (try agent.curl(["/v1/cache/stats"]).json?["entries"] as? Int) == 2 }

        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        try p.publish("\(Self.root)/cache/invalidate", #"{"origin":"nobody","hlc":"\#(now).0","scope":{"all":true}}"#)
        try p.publish("\(Self.root)/cache/invalidate", #"{"origin":"gw-b","hlc":"\#(now).1","scope":{"all":true},"epoch":"e","seq":1}"#)
        try p.publish("\(Self.root)/cache/invalidate", #"{"origin":"gw-b","hlc":"\#(now).2","scope":{"all":true},"epoch":"e","seq":500}"#)
        try p.publish("\(Self.root)/cache/watermark/gw-b", #"{"origin":"gw-b","epoch":"e","seq":900}"#)
        try Self.waitUntil("refused", timeout: 10) {
            try Self.metric(agent, "outpost_mqtt_invalidations_refused") == 3 && Self.metric(agent, "outpost_mqtt_watermarks_refused") == 1
        }
        #expect(try agent.curl(["/v1/cache/stats"]).json?["entries"] as? Int == 2)
        #expect(Self.logLines(agent, "answer cache dropped").isEmpty)
        let refusals = Self.logLines(agent, "invalidation refused")
        #expect(!refusals.isEmpty && refusals[0].contains("reason=unsigned") && refusals[0].contains("origin=nobody"), "\(refusals)")

        let op = try OutpostBinary.run(["cache", "invalidate", "--fleet-key", keys.file("fleet.key").path, "--mqtt", broker.url,
                                        "--fleet", "site", "--all"])
        #expect(op.status == 0, "\(op.stderr)")
        try Self.waitUntil("operator's applied", timeout: 10) { (try agent.curl(["/v1/cache/stats"]).json?["entries"] as? Int) == 0 }
        try Self.waitUntil("counted", timeout: 5) { try Self.metric(agent, "outpost_mqtt_invalidations_operator") == 1 }
        // Signed with a key the gateways do not trust: refused by the gateway, though the broker took it.
        let stranger = try TemporaryDirectory(prefix: "outpost-stranger-keys")
        #expect(try OutpostBinary.run(["config", "keygen", "--out", stranger.path, "--key-id", "ops"]).status == 0)
        let forged = try OutpostBinary.run(["cache", "invalidate", "--fleet-key", stranger.file("fleet.key").path, "--mqtt", broker.url,
                                            "--fleet", "site", "--tag", "x"])
        #expect(forged.status == 0, "\(forged.stderr)")
        try Self.waitUntil("stranger refused", timeout: 10) {
            try Self.metric(agent, "outpost_mqtt_invalidations_refused_bad_signature") == 1
        }
        #expect(agent.stop() == 0)
    }

    /// Members admitted by the signed fleet config (`members`): gw-a's invalidation made through
    /// its admin API reaches gw-b signed with gw-a's member key; gw-c, not listed, is refused.
    @Test func membersListedInTheSignedFleetConfigExchangeInvalidations() throws {
        let broker = try MosquittoBroker()
        let keys = try TemporaryDirectory(prefix: "outpost-fleet-keys")
        #expect(try OutpostBinary.run(["config", "keygen", "--out", keys.path, "--key-id", "ops"]).status == 0)
        var dirs: [String: TemporaryDirectory] = [:]
        var memberKeys: [String: String] = [:]
        for id in ["gw-a", "gw-b", "gw-c"] {
            let dir = try TemporaryDirectory(prefix: "outpost-\(id)")
            let r = try OutpostBinary.run(["member", "key", "--state-dir", dir.file("state").path, "--id", id, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            memberKeys[id] = try #require(Probe.json(Array(r.stdout.utf8))?["key"] as? String)
            dirs[id] = dir
        }
        let payload = #"{"members":{"gw-a":"\#(memberKeys["gw-a"]!)","gw-b":"\#(memberKeys["gw-b"]!)"}}"#
        try payload.write(toFile: keys.file("members.json").path, atomically: true, encoding: .utf8)
        let signed = try OutpostBinary.run(["config", "sign", "--key", keys.file("fleet.key").path, "--version", "1",
                                            "--in", keys.file("members.json").path, "--out", keys.file("members.signed").path])
        #expect(signed.status == 0, "\(signed.stderr)")
        var agents: [String: AgentProcess] = [:]
        for id in ["gw-a", "gw-b", "gw-c"] {
            let agent = try AgentProcess(extraArguments: ["--mqtt", broker.url, "--fleet", "site", "--id", id,
                                                          "--trust-key", keys.file("fleet.pub").path,
                                                          "--fleet-config", keys.file("members.signed").path],
                                         directory: dirs[id]!, waitReady: false)
            try agent.waitReady(timeout: 120)
            try Self.waitUntil("\(id) connected", timeout: 20) { (try agent.curl(["/health"]).json?["broker"] as? String) == "connected" }
            agents[id] = agent
        }
        let b = agents["gw-b"]!
        #expect(Self.logLines(b, "invalidations authenticated").first?.contains("members_listed=2") == true,
                "\(Self.logLines(b, "invalidations authenticated"))")
        func ask(_ agent: AgentProcess, _ q: String, tag: String) throws {
            let r = try agent.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"\#(q)"}],"max_tokens":3,"cache_tags":["\#(tag)"]}"#)
            #expect(r.status == 200, "\(r.body)")
        }
        try ask(b, "What is the capital of France?", tag: "geo")
        try ask(b, "What is the capital of Spain?", tag: "other")
        try Self.waitUntil("stored", timeout: 10) { (try b.curl(["/v1/cache/stats"]).json?["entries"] as? Int) == 2 }

        // gw-c (a member key nobody listed) invalidates everything through its admin API: refused at gw-b.
        #expect(try agents["gw-c"]!.post("/v1/cache/invalidate", json: #"{"all":true}"#).status == 200)
        try Self.waitUntil("gw-c refused", timeout: 10) { try Self.metric(b, "outpost_mqtt_invalidations_refused_unknown_member") == 1 }
        #expect(try b.curl(["/v1/cache/stats"]).json?["entries"] as? Int == 2)

        // gw-a (listed) invalidates a tag: applied at gw-b.
        #expect(try agents["gw-a"]!.post("/v1/cache/invalidate", json: #"{"tag":"geo"}"#).status == 200)
        try Self.waitUntil("gw-a applied", timeout: 10) { try Self.metric(b, "outpost_mqtt_invalidations_applied") == 1 }
        try Self.waitUntil("entry gone", timeout: 10) { (try b.curl(["/v1/cache/stats"]).json?["entries"] as? Int) == 1 }
        for agent in agents.values { #expect(agent.stop() == 0) }
    }
}
