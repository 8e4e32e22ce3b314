import Foundation
import OutpostTesting
import Synchronization
import Testing
@testable import PeerSync
@testable import MQTT

/// The connection on its own: bounded queue while the broker is away, and delivery after it returns.
@Suite struct MQTTConnectionTests {
    @Test func publicationsWhileAwayAreBoundedThenDeliveredOnReconnect() async throws {
        let broker = try MosquittoBroker(extraConfig: brokerAsTestUser, persistence: true)
        let sub = try await Requester(broker: broker, subscribe: ["queued/#"], cleanStart: false)
        var options = MQTTConnection.Options(url: try BrokerURL(broker.url), clientID: "queue-test")
        options.maxQueued = 3
        options.initialBackoffMillis = 50
        options.maximumBackoffMillis = 200
        let connection = try MQTTConnection(options: options)
        connection.start()
        try await eventually("connected") { connection.isConnected }
        broker.stop()  // saves the subscriber's session
        try await eventually("disconnected") { !connection.isConnected }
        for i in 0..<3 {
            try connection.publish(MQTTMessage(topic: "queued/\(i)", payload: Array("m\(i)".utf8), qos: 1))
        }
        let full = try #require(throws: MQTTError.self) {
            try connection.publish(MQTTMessage(topic: "queued/3", payload: [], qos: 1))
        }
        #expect(full.isQueueFull)
        let refused = try #require(throws: MQTTError.self) {
            try connection.publish(MQTTMessage(topic: "queued/x", payload: [], qos: 1), requireConnection: true)
        }
        #expect(refused.isNotConnected)
        #expect(connection.outstanding == 3)
        try broker.start()
        try await eventually("delivered after the reconnect", timeout: 15) {
            Set(sub.inbox.messages.withLock { $0.map(\.topic) }).isSuperset(of: ["queued/0", "queued/1", "queued/2"])
        }
        try await eventually("acknowledged") { connection.outstanding == 0 }
        connection.stop()
    }
}
