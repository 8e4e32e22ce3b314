import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import Testing
@testable import PeerSync
@testable import MQTT

/// Request topics against a real `mosquitto`: v5 Response Topic / Correlation Data, v3.1.1
/// `reply_to` / `id`, streaming, redeliveries, load sharing, limits and garbage.
@Suite(.serialized) struct RequestTopicTests {
    @Test func v5RequestGetsAnAnswerWithCorrelationDataThenAHit() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        let r = try await Requester(broker: broker)
        try r.send("outpost/site/gw/gw1/req", Requester.chat("hello there"), correlation: [1, 2, 3])
        try await eventually("reply") { r.replies().count == 1 }
        let m = r.replies()[0]
        #expect(m.correlationData == [1, 2, 3])
        let reply = try #require(Requester.json(m.payload))
        #expect(Requester.content(reply) == "echo: hello there")
        #expect((reply["outpost"] as? [String: Any])?["cached"] as? Bool == false)

        // The same question through the fleet topic: answered from the cache.
        try r.send("outpost/site/req", Requester.chat("hello there"), correlation: [9])
        try await eventually("second reply") { r.replies().count == 2 }
        let second = try #require(Requester.json(r.replies()[1].payload))
        #expect((second["outpost"] as? [String: Any])?["cached"] as? Bool == true)
        #expect(r.replies()[1].correlationData == [9])

        // Status is retained and says online.
        let watcher = try await Requester(broker: broker, subscribe: ["outpost/site/gw/+/status"])
        try await eventually("status") { !watcher.replies(on: "outpost/site/gw/gw1/status").isEmpty }
        let status = try #require(Requester.json(watcher.replies(on: "outpost/site/gw/gw1/status").last!.payload))
        #expect(status["state"] as? String == "online")
        #expect(status["model_fingerprint"] as? String == "echo-model")
        #expect(status["config_version"] as? Int == 7)
        #expect(status["kernel"] as? String == "test")
        #expect(status["uptime_s"] is Double || status["uptime_s"] is Int)
        #expect((status["cache"] as? [String: Any])?["entries"] != nil)
        await gw.stop()
        // A clean shutdown publishes offline itself.
        try await eventually("offline status") {
            watcher.replies(on: "outpost/site/gw/gw1/status").last.flatMap { Requester.json($0.payload)?["state"] as? String } == "offline"
        }
    }

    @Test func aRetainedRequestIsNotReplayedToANewSubscriber() async throws {
        let broker = try MosquittoBroker()
        let r = try await Requester(broker: broker)
        try r.client.publish(MQTTMessage(topic: "outpost/site/gw/gw1/req", payload: Requester.chat("retained"), qos: 1, retain: true,
                                         responseTopic: r.replyTopic, correlationData: [1]))
        try await Task.sleep(for: .milliseconds(100))
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        try r.send("outpost/site/gw/gw1/req", Requester.chat("live"), correlation: [2])
        try await eventually("live reply") { r.finals().count == 1 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(r.finals().count == 1)
        #expect(Requester.content(r.finals()[0]) == "echo: live")
        await gw.stop()
    }

    @Test func v311ClientsUseReplyToAndGetTheirIDBack() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url) { $0.protocolVersion = .v311 }
        try await gw.start()
        let r = try await Requester(broker: broker, version: .v311)
        try r.send("outpost/site/req", Requester.chat("old client", extra: ["reply_to": r.replyTopic, "id": "q-42"]), v5Reply: false)
        try await eventually("reply") { r.finals().count == 1 }
        let reply = r.finals()[0]
        #expect(reply["id"] as? String == "q-42")
        #expect(Requester.content(reply) == "echo: old client")
        await gw.stop()
    }

    @Test func streamingSendsNumberedChunksThenAFinalMessage() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        let r = try await Requester(broker: broker)
        try r.send("outpost/site/req", Requester.chat("one two three", extra: ["stream": true]), correlation: [7])
        try await eventually("final") { r.finals().count == 1 }
        let all = r.replies().compactMap { Requester.json($0.payload) }
        let chunks = all.filter { $0["object"] as? String == "chat.completion.chunk" }
        #expect(chunks.count == 4)  // "echo:", "one", "two", "three"
        #expect(chunks.map { $0["seq"] as? Int } == [0, 1, 2, 3])
        let text = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        #expect(text == "echo: one two three ")
        #expect(r.finals()[0]["seq"] as? Int == 4)
        #expect(r.replies().allSatisfy { $0.correlationData == [7] })
        await gw.stop()
    }

    @Test func aRedeliveredRequestIsAnsweredOnce() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        let r = try await Requester(broker: broker)
        // The same request twice (what a QoS 1 redelivery looks like to the gateway).
        for _ in 0..<2 { try r.send("outpost/site/gw/gw1/req", Requester.chat("once"), correlation: [5, 5]) }
        try await eventually("duplicate seen") { gw.stat("requests_duplicate") == 1 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(r.finals().count == 1)
        #expect(gw.service.calls.withLock { $0 } == 1)
        await gw.stop()
    }

    @Test func aSiteSharesTheFleetTopicBetweenItsGateways() async throws {
        let broker = try MosquittoBroker()
        let a = try TestGateway(id: "a", broker: broker.url, delay: .milliseconds(20)) { $0.maxConcurrentRequests = 64 }
        let b = try TestGateway(id: "b", broker: broker.url, delay: .milliseconds(20)) { $0.maxConcurrentRequests = 64 }
        try await a.start()
        try await b.start()
        let r = try await Requester(broker: broker)
        let n = 40
        for i in 0..<n { try r.send("outpost/site/req", Requester.chat("question \(i)"), correlation: Array("\(i)".utf8)) }
        try await eventually("all answered", timeout: 20) { r.finals().count == n }
        let byA = a.service.calls.withLock { $0 }
        let byB = b.service.calls.withLock { $0 }
        #expect(r.finals().allSatisfy { $0["error"] == nil })
        #expect(byA + byB == n)  // each request answered by exactly one gateway
        #expect(byA >= n / 4 && byB >= n / 4, "load shared: a \(byA), b \(byB)")
        let gateways = Set(r.finals().compactMap { ($0["outpost"] as? [String: Any])?["gateway"] as? String })
        #expect(gateways == ["a", "b"])
        await a.stop()
        await b.stop()
    }

    @Test func concurrencyIsBoundedAndTheRestAreToldBusy() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url, delay: .milliseconds(300)) {
            $0.maxConcurrentRequests = 2
            $0.maxWaitingRequests = 1
        }
        try await gw.start()
        let r = try await Requester(broker: broker)
        for i in 0..<6 { try r.send("outpost/site/req", Requester.chat("slow \(i)"), correlation: [UInt8(i)]) }
        try await eventually("all replied") { r.finals().count == 6 }
        let busy = r.finals().filter { ($0["error"] as? [String: Any])?["type"] as? String == "server_busy" }
        #expect(busy.count == 3)  // two answered at once, one waited, three refused
        #expect(r.finals().filter { Requester.content($0) != nil }.count == 3)
        #expect(gw.service.active.withLock { $0.peak } <= 2)
        await gw.stop()
    }

    /// Garbage, oversized and wrong-typed payloads on every subscribed topic: error replies where
    /// there is somewhere to reply, counters otherwise, and the gateway keeps answering.
    @Test func garbageOnEveryTopicIsSurvived() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        let r = try await Requester(broker: broker)
        let garbage: [[UInt8]] = [
            [], [0xFF, 0xFE, 0x00], Array("not json".utf8), Array("[1,2]".utf8), Array("\"s\"".utf8),
            Array(#"{"messages":"hi"}"#.utf8), Array(#"{"messages":[]}"#.utf8),
            Array(#"{"messages":[{"role":"user","content":5}]}"#.utf8),
            Array(#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#.utf8),
            Array(#"{"messages":[{"role":"user","content":"x"}],"stream":"yes"}"#.utf8),
            Array(#"{"messages":[{"role":"user","content":"x"}],"max_tokens":1.5}"#.utf8),
            Array(repeating: UInt8(ascii: "{"), count: 100_000),
            [UInt8](repeating: 0x20, count: (1 << 20) + 1),  // oversized
        ]
        let requestTopics = ["outpost/site/req", "outpost/site/gw/gw1/req"]
        var expected = 0
        for topic in requestTopics {
            for (i, g) in garbage.enumerated() {
                try r.send(topic, g, correlation: Array("\(topic)-\(i)".utf8))
                expected += 1
            }
            // v3.1.1-style without any reply address: nothing to reply to.
            try r.send(topic, Array("garbage".utf8), v5Reply: false)
            try r.send(topic, Array(#"{"reply_to":"a/#","messages":[]}"#.utf8), v5Reply: false)
        }
        for g in garbage + [Array(#"{"origin":"x","hlc":"1.1","scope":{"all":"yes"}}"#.utf8)] {
            try r.send("outpost/site/cache/invalidate", g, v5Reply: false)
        }
        try await eventually("error replies", timeout: 20) { r.finals().count == expected }
        let errors = r.finals().compactMap { ($0["error"] as? [String: Any])?["type"] as? String }
        #expect(errors.count == expected)
        #expect(errors.filter { $0 == "payload_too_large" }.count == 2)
        #expect(errors.filter { $0 == "invalid_request_error" }.count == expected - 2)
        for g in garbage + [Array(#"{"origin":"gw1","epoch":"e","seq":-1}"#.utf8)] {
            try r.send("outpost/site/cache/watermark/gw1", g, v5Reply: false)
        }
        try await eventually("invalidations rejected") { gw.stat("invalidations_rejected") == garbage.count + 1 }
        try await eventually("watermarks rejected") { gw.stat("watermarks_rejected") == garbage.count + 1 }
        #expect(gw.stat("gaps") == 0)
        try await eventually("unanswerable requests counted") { gw.stat("requests_unanswerable") == 4 }
        #expect(gw.stat("invalidations_applied") == 0)
        // Still answering.
        try r.send("outpost/site/req", Requester.chat("still there?"), correlation: [42])
        try await eventually("answer after garbage") { r.finals().contains { Requester.content($0) == "echo: still there?" } }
        await gw.stop()
    }
}

/// The Last Will and the reconnect after a dropped connection.
@Suite struct WillAndReconnectTests {
    @Test func aDroppedConnectionPublishesTheWillThenTheGatewayComesBackOnline() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        let watcher = try await Requester(broker: broker, subscribe: ["outpost/site/gw/gw1/status"])
        let states = { watcher.replies(on: "outpost/site/gw/gw1/status").compactMap { Requester.json($0.payload)?["state"] as? String } }
        try await eventually("online") { states().last == "online" }
        // Cut the TCP connection under libmosquitto, as a network failure would: no DISCONNECT.
        let peer = try #require(gw.peer)
        #expect(shutdown(peer.connection.client.socketDescriptor, Int32(SHUT_RDWR)) == 0)
        try await eventually("will published") { states().contains("offline") }
        try await eventually("back online", timeout: 15) { states().last == "online" && gw.stat("connects") >= 2 }
        #expect(gw.stat("session_losses") == 0)  // same session
        // And it still answers.
        let r = try await Requester(broker: broker)
        try r.send("outpost/site/req", Requester.chat("after the drop"), correlation: [3])
        try await eventually("answer") { r.finals().count == 1 }
        await gw.stop()
    }

    @Test func theFirstConnectIsRetriedUntilTheBrokerAppears() async throws {
        let broker = try MosquittoBroker()
        broker.kill()  // the port is known, nothing listens yet
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start(waitConnected: false)
        try await eventually("connect failures") { gw.stat("connect_failures") >= 3 }
        #expect(gw.peer?.brokerState == "connecting")
        try broker.start()
        try await eventually("connected", timeout: 15) { gw.peer?.brokerState == "connected" }
        await gw.stop()
    }
}

/// The README's commands: the stock mosquitto clients ask a gateway.
@Suite struct MosquittoClientToolsTests {
    @Test func mosquittoRRGetsTheAnswer() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        let out = broker.directory.file("rr.out").path
        let rr = try ChildProcess(executable: "/usr/bin/mosquitto_rr", arguments: [
            "-V", "5", "-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-W", "10",
            "-t", "outpost/site/req", "-e", "replies/rr-test",
            "-m", #"{"messages":[{"role":"user","content":"When does the depot open?"}]}"#,
        ], stdoutPath: out)
        let status = await Task.detached { rr.wait(timeout: 15) }.value
        #expect(status.flatMap(ChildProcess.exitCode) == 0)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let reply = try #require(Requester.json(Array(text.utf8)), "mosquitto_rr printed: \(text)")
        #expect(Requester.content(reply) == "echo: When does the depot open?")
        await gw.stop()
    }
}
