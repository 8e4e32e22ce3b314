import Hummingbird
import NIOCore

/// Hummingbird's basic request context plus the connection the request came in on, so that a
/// route can cancel its work when that connection closes (`ConnectionRegistry.onDeparture`).
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}
