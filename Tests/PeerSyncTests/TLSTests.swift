import Foundation
import OutpostTesting
import Testing
@testable import MQTT
@testable import PeerSync

/// `mqtts://` with a CA made by `openssl` in the test, a client certificate the broker requires,
/// and a username/password read from a file.
@Suite struct TLSTests {
    /// Runs openssl with `arguments` in `directory`; fails the test if it does not exit 0.
    static func openssl(_ arguments: [String], in directory: TemporaryDirectory) throws {
        let p = try ChildProcess(executable: "/usr/bin/openssl", arguments: arguments,
                                 stdoutPath: directory.file("openssl.out").path, stderrPath: directory.file("openssl.err").path)
        let status = try #require(p.wait(timeout: 60), "openssl did not finish")
        let err = (try? String(contentsOfFile: directory.file("openssl.err").path, encoding: .utf8)) ?? ""
        #expect(ChildProcess.exitCode(status) == 0, "openssl \(arguments.joined(separator: " ")): \(err)")
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA.
    static func makePKI(in d: TemporaryDirectory) throws {
        let p = { (name: String) in d.file(name).path }
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: p("san.ext"), atomically: true, encoding: .utf8)
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.crt"),
                     "-days", "2", "-subj", "/CN=outpost-test-ca"], in: d)
        for (name, subject, ext) in [("server", "/CN=127.0.0.1", true), ("client", "/CN=gw1", false)] {
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("\(name).key"), "-out", p("\(name).csr"),
                         "-subj", subject], in: d)
            try openssl(["x509", "-req", "-in", p("\(name).csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
                         "-CAcreateserial", "-out", p("\(name).crt"), "-days", "2"] + (ext ? ["-extfile", p("san.ext")] : []), in: d)
        }
    }

    @Test func requestsOverTLSWithAClientCertificateAndAPasswordFile() async throws {
        let pki = try TemporaryDirectory(prefix: "outpost-pki")
        defer { pki.remove() }
        try Self.makePKI(in: pki)
        // A password file for the broker (mosquitto_passwd) and one for the gateway.
        try "".write(toFile: pki.file("passwd").path, atomically: true, encoding: .utf8)
        for (user, password) in [("gw1", "s3cret"), ("tester", "t3st")] {
            let pw = try ChildProcess(executable: "/usr/bin/mosquitto_passwd", arguments: ["-b", pki.file("passwd").path, user, password],
                                      stdoutPath: pki.file("pw.out").path)
            #expect(pw.wait(timeout: 30).flatMap(ChildProcess.exitCode) == 0)
        }
        try "s3cret\n".write(toFile: pki.file("gw.password").path, atomically: true, encoding: .utf8)

        let tlsPort = try MosquittoBroker.freeLoopbackPort()
        let broker = try MosquittoBroker(extraConfig: brokerAsTestUser + "\n" + """
            listener \(tlsPort) 127.0.0.1
            cafile \(pki.file("ca.crt").path)
            certfile \(pki.file("server.crt").path)
            keyfile \(pki.file("server.key").path)
            require_certificate true
            allow_anonymous false
            password_file \(pki.file("passwd").path)
            """)
        // allow_anonymous and password_file apply to both listeners: the test's requester, on the
        // plain one, logs in too.
        let gw = try TestGateway(id: "gw1", broker: "mqtts://127.0.0.1:\(tlsPort)") { c in
            c.caFile = pki.file("ca.crt").path
            c.certFile = pki.file("client.crt").path
            c.keyFile = pki.file("client.key").path
            c.username = "gw1"
            c.passwordFile = pki.file("gw.password").path
        }
        try await gw.start()
        let r = try await Requester(broker: broker, credentials: ("tester", "t3st"))
        try r.send("outpost/site/gw/gw1/req", Requester.chat("secure"), correlation: [1])
        try await eventually("reply over TLS") { r.finals().count == 1 }
        #expect(Requester.content(r.finals()[0]) == "echo: secure")
        await gw.stop()

        // Without the right CA the gateway never connects, and says why.
        let other = try TemporaryDirectory(prefix: "outpost-pki2")
        defer { other.remove() }
        try Self.makePKI(in: other)
        let stranger = try TestGateway(id: "gw2", broker: "mqtts://127.0.0.1:\(tlsPort)") { c in
            c.caFile = other.file("ca.crt").path
            c.certFile = other.file("client.crt").path
            c.keyFile = other.file("client.key").path
        }
        try await stranger.start(waitConnected: false)
        try await eventually("connect failures counted") { stranger.stat("connect_failures") >= 2 }
        #expect(stranger.peer?.brokerState == "connecting")
        await stranger.stop()
    }

    @Test func mqttsWithoutACAIsRefusedAtConfiguration() throws {
        let d = try TemporaryDirectory(prefix: "outpost-gw")
        defer { d.remove() }
        let gw = try TestGateway(id: "g", broker: "mqtts://127.0.0.1:8883", directory: d)
        let error = try #require(throws: MQTTError.self) {
            try PeerSync(configuration: gw.configuration, service: gw.service, target: gw.cache, log: gw.outbox)
        }
        #expect(error.isInvalidConfiguration)
    }
}
