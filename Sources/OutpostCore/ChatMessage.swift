import Foundation

/// One message of a chat request, in normalised form.
///
/// Normalisation makes requests that differ only in irrelevant ways produce the same cache key:
/// the role is lower-cased and trimmed, line endings become `\n`, and leading and trailing
/// whitespace of the content is removed, and the text is put in Unicode NFC (precomposed) form so
/// that canonically equivalent spellings encode to the same bytes. Nothing else is changed.
public struct ChatMessage: Sendable, Hashable, Codable {
    public let role: String
    public let content: String

    public init(role: String, content: String) {
        self.role = Self.normalise(role: role)
        self.content = Self.normalise(content: content)
    }

    static func normalise(role: String) -> String {
        role.trimmingASCIIWhitespace().lowercased()
    }

    static func normalise(content: String) -> String {
        var text = content
        if text.contains("\r") {
            text = text.replacingCRLF()
        }
        return text.trimmingASCIIWhitespace().precomposedStringWithCanonicalMapping
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let scalars = unicodeScalars
        func isSpace(_ s: Unicode.Scalar) -> Bool {
            s == " " || s == "\t" || s == "\n" || s == "\r" || s == "\u{0B}" || s == "\u{0C}"
        }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isSpace($0) })!
        return String(scalars[first...last])
    }

    func replacingCRLF() -> String {
        var out = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                out.append("\n")
                previousWasCR = true
                continue
            }
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            out.append(scalar)
        }
        return String(out)
    }
}
