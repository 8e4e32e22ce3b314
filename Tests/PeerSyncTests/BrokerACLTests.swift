import Foundation
import OutpostTesting
import Synchronization
import Testing
@testable import PeerSync
@testable import MQTT

/// The shipped broker access control (board/mosquitto/make-broker-auth.sh) on a real mosquitto:
/// every connection authenticates, and each role publishes and reads only what it needs. Checked
/// with MQTT v5 QoS 1, where the broker answers an unauthorised publish with reason code 0x87
/// instead of dropping it silently, and by what an operator subscribed to everything receives.
@Suite(.serialized) struct BrokerACLTests {
    static let root = "outpost/site-a"
    static let notAuthorized: Int32 = 0x87

    /// A broker with the users and ACL the script writes for gateways gw-1, gw-2 and client app.
    static func broker() throws -> (MosquittoBroker, TemporaryDirectory) {
        let dir = try TemporaryDirectory(prefix: "outpost-acl")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../board/mosquitto/make-broker-auth.sh").standardized.path
        let child = try ChildProcess(executable: "/bin/bash",
                                     arguments: [script, "--fleet", "site-a", "--gateways", "gw-1,gw-2",
                                                 "--clients", "app", "--out", dir.path],
                                     stdoutPath: dir.file("script.log").path)
        let status = try #require(child.wait(timeout: 30))
        #expect(ChildProcess.exitCode(status) == 0, "\((try? String(contentsOfFile: dir.file("script.log").path, encoding: .utf8)) ?? "")")
        // The test runs as root in CI, where mosquitto would drop to its own user and no longer
        // read the 0600 files: `user root` keeps it as it is (ignored when not started as root).
        let broker = try MosquittoBroker(extraConfig: """
            allow_anonymous false
            password_file \(dir.path)/passwd
            acl_file \(dir.path)/acl
            user root
            """)
        return (broker, dir)
    }

    /// A connected v5 client as `user` (nil: anonymous); returns the CONNACK reason code too.
    static func connect(_ broker: MosquittoBroker, _ dir: TemporaryDirectory, as user: String?) async throws
        -> (MosquittoClient, Int32) {
        let c = try MosquittoClient(clientID: "\(user ?? "anon")-\(UUID().uuidString.prefix(6))", cleanStart: true,
                                    protocolVersion: .v5)
        if let user {
            let password = try String(contentsOfFile: dir.file("secrets/\(user).password").path, encoding: .utf8)
            try c.setCredentials(username: user, password: password.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try c.startLoop()
        try c.connect(host: "127.0.0.1", port: broker.port)
        let e = try await MosquittoClientTests.next(c.events) { if case .connected = $0 { true } else { false } }
        guard case .connected(let code, _) = e else { return (c, -1) }
        return (c, code)
    }

    /// The PUBACK reason code of a QoS 1 publish of `topic`.
    static func publish(_ c: MosquittoClient, _ topic: String) async throws -> Int32 {
        let mid = try c.publish(MQTTMessage(topic: topic, payload: Array("x".utf8), qos: 1))
        let e = try await MosquittoClientTests.next(c.events) {
            if case .published(let m, _) = $0 { m == mid } else { false }
        }
        guard case .published(_, let code) = e else { return -1 }
        return code
    }

    /// The topics of the messages `c` receives within `seconds`.
    static func received(by c: MosquittoClient, within seconds: Double) async throws -> [String] {
        let topics = Mutex<[String]>([])
        let reader = Task {
            for await e in c.events {
                if case .message(let m) = e { topics.withLock { $0.append(m.topic) } }
            }
        }
        try await Task.sleep(for: .seconds(seconds))
        reader.cancel()
        return topics.withLock { $0 }
    }

    @Test func eachRolePublishesOnlyItsOwnTopics() async throws {
        let (broker, dir) = try Self.broker()
        let root = Self.root
        let (operatorClient, code) = try await Self.connect(broker, dir, as: "operator")
        #expect(code == 0)
        _ = try operatorClient.subscribe("#", qos: 1)
        _ = try await MosquittoClientTests.next(operatorClient.events) { if case .subscribed = $0 { true } else { false } }

        let (gw1, c1) = try await Self.connect(broker, dir, as: "gw-1")
        let (app, c2) = try await Self.connect(broker, dir, as: "app")
        #expect(c1 == 0 && c2 == 0)
        // (publisher, topic, allowed)
        let cases: [(MosquittoClient, String, String, Bool)] = [
            (gw1, "gw-1", "\(root)/gw/gw-1/status", true),
            (gw1, "gw-1", "\(root)/cache/watermark/gw-1", true),
            (gw1, "gw-1", "\(root)/cache/invalidate", true),
            (gw1, "gw-1", "replies/app/q1", true),
            (gw1, "gw-1", "\(root)/gw/gw-2/status", false),       // another gateway's status
            (gw1, "gw-1", "\(root)/cache/watermark/gw-2", false),  // another gateway's watermark
            (gw1, "gw-1", "\(root)/config", false),                // configs are the operator's
            (gw1, "gw-1", "\(root)/gw/gw-1/config", false),
            (gw1, "gw-1", "\(root)/req", false),
            (app, "app", "\(root)/req", true),
            (app, "app", "\(root)/gw/gw-2/req", true),
            (app, "app", "\(root)/cache/invalidate", false),       // the attack of issue 17
            (app, "app", "\(root)/gw/gw-1/status", false),
            (app, "app", "\(root)/cache/watermark/gw-1", false),
            (app, "app", "\(root)/config", false),
            (app, "app", "replies/other/q1", false),
        ]
        for (client, who, topic, allowed) in cases {
            let rc = try await Self.publish(client, topic)
            if allowed {
                #expect(rc != Self.notAuthorized, "\(who) must be able to publish \(topic) (reason \(rc))")
            } else {
                #expect(rc == Self.notAuthorized, "\(who) must not publish \(topic) (reason \(rc))")
            }
        }
        // What reached the operator: exactly the allowed topics under the fleet root.
        let seen = try await Self.received(by: operatorClient, within: 0.5)
        let expected = cases.filter { $0.3 && $0.2.hasPrefix(root + "/") }.map(\.2)
        #expect(seen.sorted() == expected.sorted())
        for c in [operatorClient, gw1, app] { try c.disconnect() }
        broker.stop()
    }

    @Test func clientsReadOnlyTheirRepliesAndAnonymousIsRefused() async throws {
        let (broker, dir) = try Self.broker()
        let (_, anonymous) = try await Self.connect(broker, dir, as: nil)
        #expect(anonymous != 0)

        // mosquitto 2.0 grants any subscription and applies the read ACL when it delivers: the
        // client subscribes wide, and only its own replies reach it.
        let (app, _) = try await Self.connect(broker, dir, as: "app")
        let (operatorClient, _) = try await Self.connect(broker, dir, as: "operator")
        let (gw1, _) = try await Self.connect(broker, dir, as: "gw-1")
        for filter in ["replies/#", "\(Self.root)/#"] {
            let mid = try app.subscribe(filter, qos: 1)
            _ = try await MosquittoClientTests.next(app.events) { if case .subscribed(let m, _) = $0 { m == mid } else { false } }
        }
        let reading = Task { try await Self.received(by: app, within: 1.0) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await Self.publish(gw1, "replies/app/q1") == 0)
        #expect(try await Self.publish(gw1, "replies/other/q1") == 0)
        #expect(try await Self.publish(gw1, "\(Self.root)/cache/invalidate") == 0)
        #expect(try await Self.publish(operatorClient, "\(Self.root)/config") == 0)
        #expect(try await reading.value == ["replies/app/q1"])
        try operatorClient.disconnect()
        try gw1.disconnect()

        let (gw2, _) = try await Self.connect(broker, dir, as: "gw-2")
        let mid = try gw2.subscribe("$share/site-a/\(Self.root)/req", qos: 1)
        let e = try await MosquittoClientTests.next(gw2.events) { if case .subscribed(let m, _) = $0 { m == mid } else { false } }
        #expect(e == .subscribed(messageID: mid, grantedQoS: [1]), "a gateway takes fleet requests through the shared subscription")
        try app.disconnect()
        try gw2.disconnect()
        broker.stop()
    }
}
