@testable import Agent
import FleetConfig
import Foundation
import OutpostCore
import OutpostTesting
import PeerSync
import Testing

/// The member key and certificate files in the state directory (`MemberIdentity.loadOrCreate`).
@Suite struct MemberKeyFileTests {
    @Test func memberKeyFilesAreMadeOnceAndCertificatesMustMatch() throws {
        let dir = try TemporaryDirectory(prefix: "outpost-member")
        let first = try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-1")
        let again = try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-1")
        #expect(first.publicKey == again.publicKey)
        var st = stat()
        #expect(stat(dir.file("member.key").path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let fleetKey = Ed25519.PrivateKey()
        let cert = try MemberCertificate.issue(fleet: "f1", gateway: "gw-1", publicKey: first.publicKey, keyID: "ops", signer: fleetKey)
        try cert.fileText.write(toFile: dir.file("member.cert").path, atomically: true, encoding: .utf8)
        #expect(try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-1", fleet: "f1").certificate == cert)
        #expect(throws: KeyFile.Error.self) { try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-2") }
        #expect(throws: KeyFile.Error.self) { try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-1", fleet: "f2") }
        let other = try MemberCertificate.issue(fleet: "f1", gateway: "gw-1", publicKey: Ed25519.PrivateKey().publicKey, keyID: "ops", signer: fleetKey)
        try other.fileText.write(toFile: dir.file("member.cert").path, atomically: true, encoding: .utf8)
        #expect(throws: KeyFile.Error.self) { try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-1") }
        try "outpost-member-certificate v1\nfleet: f1\n".write(toFile: dir.file("member.cert").path, atomically: true, encoding: .utf8)
        #expect(throws: KeyFile.Error.self) { try MemberIdentity.loadOrCreate(stateDirectory: dir.path, gateway: "gw-1") }
    }
}
