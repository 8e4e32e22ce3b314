/// Answering queries: what a front door (HTTP on the Unix socket, MQTT request topics) hands a
/// parsed and validated `Query` to. `Agent` implements it; the doors only parse, validate and
/// hand over.
public protocol QueryAnswering: Sendable {
    /// Answers `query`. Text is handed to `onPiece` as it is produced (a cached answer arrives as
    /// one piece); the returned value carries the whole answer and how it was obtained.
    /// Throws `ServiceError` when the request cannot be served (busy, too long, shutting down),
    /// and `CancellationError` when its task is cancelled (the client left); nothing partial is
    /// cached then.
    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery

    /// The model's identity for `/v1/models` and responses.
    var modelName: String { get }

    /// Sampling defaults for the fields a request leaves out, when the service changes them while
    /// running (a fleet config); nil leaves each door with the defaults it was configured with.
    var samplingDefaults: SamplingParameters? { get }
}

extension QueryAnswering {
    public var samplingDefaults: SamplingParameters? { nil }
}
