import ArgumentParser
import NIOCore
import SpoolClient

/// A kcat-style output format (`%k=%v\n`), parsed once and rendered per record.
struct RecordFormat {
    enum Piece { case literal([UInt8]), topic, partition, offset, key, value, keyLength, valueLength, headers, timestamp }
    let pieces: [Piece]
    /// Printed for a null key or value (empty unless --print-null).
    let nullText: [UInt8]

    init(_ format: String, printNull: Bool = false) throws {
        nullText = printNull ? Array("NULL".utf8) : []
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        var chars = Array(format.utf8)[...]
        func flush() { if !literal.isEmpty { pieces.append(.literal(literal)); literal.removeAll() } }
        while let c = chars.popFirst() {
            if c == UInt8(ascii: "%") || c == UInt8(ascii: "\\") {
                guard let next = chars.popFirst() else { throw ValidationError("--format ends with a lone '\(Character(UnicodeScalar(c)))'") }
                if c == UInt8(ascii: "\\") {
                    switch next {
                    case UInt8(ascii: "n"): literal.append(0x0A)
                    case UInt8(ascii: "t"): literal.append(0x09)
                    case UInt8(ascii: "\\"): literal.append(UInt8(ascii: "\\"))
                    default: throw ValidationError("--format: unknown escape \\\(Character(UnicodeScalar(next)))")
                    }
                    continue
                }
                let piece: Piece
                switch next {
                case UInt8(ascii: "t"): piece = .topic
                case UInt8(ascii: "p"): piece = .partition
                case UInt8(ascii: "o"): piece = .offset
                case UInt8(ascii: "k"): piece = .key
                case UInt8(ascii: "v"): piece = .value
                case UInt8(ascii: "K"): piece = .keyLength
                case UInt8(ascii: "S"): piece = .valueLength
                case UInt8(ascii: "h"): piece = .headers
                case UInt8(ascii: "T"): piece = .timestamp
                case UInt8(ascii: "%"): literal.append(UInt8(ascii: "%")); continue
                default: throw ValidationError("--format: unknown field %\(Character(UnicodeScalar(next))); use %t %p %o %k %v %K %S %h %T")
                }
                flush()
                pieces.append(piece)
            } else {
                literal.append(c)
            }
        }
        flush()
        self.pieces = pieces
    }

    func render(_ r: ConsumerRecord, into out: inout [UInt8]) {
        for piece in pieces {
            switch piece {
            case .literal(let bytes): out += bytes
            case .topic: out += r.topic.utf8
            case .partition: appendDecimal(Int64(r.partition), to: &out)
            case .offset: appendDecimal(r.offset, to: &out)
            case .timestamp: appendDecimal(r.timestamp, to: &out)
            case .key: if r.withUnsafeKeyBytes({ out += $0 }) == nil { out += nullText }
            case .value: if r.withUnsafeValueBytes({ out += $0 }) == nil { out += nullText }
            case .keyLength: appendDecimal(Int64(r.keyLength ?? -1), to: &out)
            case .valueLength: appendDecimal(Int64(r.valueLength ?? -1), to: &out)
            case .headers:
                for (i, h) in r.headers.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out += h.key.utf8
                    out.append(UInt8(ascii: "="))
                    if let v = h.value { out += v.readableBytesView } else { out += nullText }
                }
            }
        }
    }
}

/// Appends `value` in decimal without making a String.
func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
    if value < 0 {
        out.append(UInt8(ascii: "-"))
        if value == .min { out += "9223372036854775808".utf8; return }
    }
    var v = value.magnitude
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var n = 0
    withUnsafeMutableBytes(of: &digits) { d in
        repeat {
            d[n] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            n += 1
        } while v > 0
        for i in stride(from: n - 1, through: 0, by: -1) { out.append(d[i]) }
    }
}
