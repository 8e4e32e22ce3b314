import Foundation
import OutpostTesting
import Testing
@testable import PeerSync
@testable import MQTT

/// libmosquitto linked and working against a real `mosquitto` on a free loopback port.
@Suite struct MosquittoClientTests {
    /// Waits for the first event matching `predicate`, failing after `timeout` seconds.
    static func next(_ events: AsyncStream<MQTTEvent>, timeout: Double = 10,
                     where predicate: @escaping @Sendable (MQTTEvent) -> Bool) async throws -> MQTTEvent {
        try await withThrowingTaskGroup(of: MQTTEvent?.self) { group in
            group.addTask {
                for await e in events where predicate(e) { return e }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return try #require(first, "no matching MQTT event within \(timeout) s")
        }
    }

    @Test(arguments: [MosquittoClient.ProtocolVersion.v5, .v311])
    func publishAndReceiveThroughARealBroker(version: MosquittoClient.ProtocolVersion) async throws {
        let broker = try MosquittoBroker()
        let sub = try MosquittoClient(clientID: "sub-\(UUID().uuidString.prefix(8))", cleanStart: true, protocolVersion: version)
        let pub = try MosquittoClient(clientID: "pub-\(UUID().uuidString.prefix(8))", cleanStart: true, protocolVersion: version)
        for c in [sub, pub] {
            try c.startLoop()
            try c.connect(host: "127.0.0.1", port: broker.port)
        }
        for c in [sub, pub] {
            let e = try await Self.next(c.events) { if case .connected = $0 { true } else { false } }
            #expect(e == .connected(reasonCode: 0, sessionPresent: false))
        }
        let mid = try sub.subscribe("outpost/test/#", qos: 1)
        let granted = try await Self.next(sub.events) { if case .subscribed = $0 { true } else { false } }
        #expect(granted == .subscribed(messageID: mid, grantedQoS: [1]))

        let sent = MQTTMessage(topic: "outpost/test/hello", payload: Array("{\"q\":\"hi\"}".utf8), qos: 1,
                               responseTopic: "outpost/test/reply", correlationData: [0, 1, 2, 255])
        let pubMid = try pub.publish(sent)
        let acked = try await Self.next(pub.events) { if case .published = $0 { true } else { false } }
        #expect(acked == .published(messageID: pubMid, reasonCode: 0))

        let received = try await Self.next(sub.events) { if case .message = $0 { true } else { false } }
        guard case .message(let m) = received else { return }
        #expect(m.topic == sent.topic)
        #expect(m.payload == sent.payload)
        #expect(m.qos == 1)
        if version == .v5 {
            #expect(m.responseTopic == "outpost/test/reply")
            #expect(m.correlationData == [0, 1, 2, 255])
        } else {
            #expect(m.responseTopic == nil)  // v3.1.1 has no properties
        }
        for c in [sub, pub] {
            try c.disconnect()
            c.stopLoop()
        }
        broker.stop()  // mosquitto's stdout is block-buffered: its log is complete once it exits
        #expect(broker.log().contains("New client connected"))
    }

    @Test func connectToAClosedPortThrowsAClearError() throws {
        let port = try MosquittoBroker.freeLoopbackPort()
        let c = try MosquittoClient(clientID: "lonely", cleanStart: true)
        let error = try #require(throws: MQTTError.self) { try c.connect(host: "127.0.0.1", port: port) }
        #expect(error.description.contains("connect to 127.0.0.1:\(port)"))
        #expect(error.returnCode != nil)
    }

    /// Broker ports come from below the ephemeral range, so no outgoing connection can take one
    /// as its local port while a killed broker is away, and never twice in one process.
    @Test func freePortsAreOutsideTheEphemeralRangeAndDistinct() throws {
        let ports = try (0..<50).map { _ in try MosquittoBroker.freeLoopbackPort() }
        #expect(Set(ports).count == ports.count)
        let ephemeral = MosquittoBroker.ephemeralPortRangeStart()
        #expect(ephemeral > 1024)
        #expect(ports.allSatisfy { $0 >= 1024 && $0 < max(ephemeral, 2048) })
    }

    @Test func brokerRestartsOnTheSamePort() throws {
        let broker = try MosquittoBroker()
        let port = broker.port
        broker.kill()
        #expect(!MosquittoBroker.canConnect(port: port))
        try broker.start()
        #expect(MosquittoBroker.canConnect(port: port))
    }
}
