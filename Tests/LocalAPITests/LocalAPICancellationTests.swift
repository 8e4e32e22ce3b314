import Foundation
import OutpostCore
import OutpostTesting
import Testing

/// A client that leaves cancels the answer it was waiting for, streamed or not, at once rather
/// than when the answer would have been written.
@Suite struct LocalAPICancellationTests {
    @Test func aClientLeavingCancelsAWholeAnswer() async throws {
        let server = try await TestServer.start()
        let client = try await server.connect()
        try await client.send(HTTP.post(HTTP.chat("hang")))
        await eventually("the answer started") { server.service.started == 1 }
        #expect(server.service.cancelled == 0)
        client.close()
        await eventually("the answer was cancelled") { server.service.cancelled == 1 }
        await server.stop()
    }

    @Test func aClientLeavingCancelsAStreamedAnswer() async throws {
        let server = try await TestServer.start()
        let client = try await server.connect()
        try await client.send(HTTP.post(HTTP.chat("hang", extra: #","stream":true"#)))
        let first = await client.read(until: "hang-piece", timeout: 10)
        #expect(first.found, "\(String(decoding: first.bytes, as: UTF8.self))")
        #expect(server.service.cancelled == 0)
        client.close()
        await eventually("the streamed answer was cancelled") { server.service.cancelled == 1 }
        await server.stop()
    }
}
