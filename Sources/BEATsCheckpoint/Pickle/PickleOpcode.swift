/// The opcodes of Python's pickle format (protocols 0 to 5), named as `pickletools` names them.
///
/// Kept as a table of its own so error messages, tests and fuzzing dictionaries all spell the
/// opcodes the way `python3 -m pickletools` prints them.
public enum PickleOpcode: UInt8, CaseIterable, Sendable {
    // Integers.
    case int = 0x49              // I  decimal text line; "00"/"01" are False/True
    case binInt = 0x4A           // J  4-byte signed little-endian
    case binInt1 = 0x4B          // K  1-byte unsigned
    case binInt2 = 0x4D          // M  2-byte unsigned little-endian
    case long = 0x4C             // L  decimal text line with optional trailing "L"
    case long1 = 0x8A            //    1-byte length, then little-endian two's complement
    case long4 = 0x8B            //    4-byte signed length, then little-endian two's complement
    // Strings and bytes.
    case string = 0x53           // S  quoted, escaped text line (Python 2 str)
    case binString = 0x54        // T  4-byte signed length (Python 2 str)
    case shortBinString = 0x55   // U  1-byte length (Python 2 str)
    case binBytes = 0x42         // B  4-byte unsigned length
    case shortBinBytes = 0x43    // C  1-byte length
    case binBytes8 = 0x8E        //    8-byte length
    case byteArray8 = 0x96       //    8-byte length, a bytearray
    case nextBuffer = 0x97       //    out-of-band buffer (refused: torch never passes buffers)
    case readonlyBuffer = 0x98   //    makes the top buffer read-only
    case unicode = 0x56          // V  raw-unicode-escape text line
    case shortBinUnicode = 0x8C  //    1-byte length, UTF-8
    case binUnicode = 0x58       // X  4-byte unsigned length, UTF-8
    case binUnicode8 = 0x8D      //    8-byte length, UTF-8
    // Constants and floats.
    case none = 0x4E             // N
    case newTrue = 0x88
    case newFalse = 0x89
    case float = 0x46            // F  text line
    case binFloat = 0x47         // G  8-byte big-endian IEEE double
    // Containers.
    case emptyList = 0x5D        // ]
    case append = 0x61           // a
    case appends = 0x65          // e
    case list = 0x6C             // l
    case emptyTuple = 0x29       // )
    case tuple = 0x74            // t
    case tuple1 = 0x85
    case tuple2 = 0x86
    case tuple3 = 0x87
    case emptyDict = 0x7D        // }
    case dict = 0x64             // d
    case setItem = 0x73          // s
    case setItems = 0x75         // u
    case emptySet = 0x8F
    case addItems = 0x90
    case frozenSet = 0x91
    // Stack and memo.
    case pop = 0x30              // 0
    case dup = 0x32              // 2
    case mark = 0x28             // (
    case popMark = 0x31          // 1
    case get = 0x67              // g  decimal text line
    case binGet = 0x68           // h  1-byte key
    case longBinGet = 0x6A       // j  4-byte unsigned key
    case put = 0x70              // p  decimal text line
    case binPut = 0x71           // q  1-byte key
    case longBinPut = 0x72       // r  4-byte unsigned key
    case memoize = 0x94          //    key = number of memo entries
    // Objects.
    case ext1 = 0x82             //    extension registry (refused)
    case ext2 = 0x83
    case ext4 = 0x84
    case global = 0x63           // c  "module\nname\n"
    case stackGlobal = 0x93      //    module and name popped from the stack
    case reduce = 0x52           // R  callable(*args)
    case build = 0x62            // b  obj.__setstate__(state)
    case inst = 0x69             // i  (refused: Python 3 never emits it)
    case obj = 0x6F              // o  (refused: Python 3 never emits it)
    case newObj = 0x81           //    cls.__new__(cls, *args)
    case newObjEx = 0x92         //    cls.__new__(cls, *args, **kwargs)
    // Framing.
    case proto = 0x80
    case stop = 0x2E             // .
    case frame = 0x95            //    8-byte frame length
    case persID = 0x50           // P  text persistent id
    case binPersID = 0x51        // Q  persistent id popped from the stack

    /// The name `pickletools` prints, e.g. `BINUNICODE`.
    public var name: String {
        switch self {
        case .int: "INT"
        case .binInt: "BININT"
        case .binInt1: "BININT1"
        case .binInt2: "BININT2"
        case .long: "LONG"
        case .long1: "LONG1"
        case .long4: "LONG4"
        case .string: "STRING"
        case .binString: "BINSTRING"
        case .shortBinString: "SHORT_BINSTRING"
        case .binBytes: "BINBYTES"
        case .shortBinBytes: "SHORT_BINBYTES"
        case .binBytes8: "BINBYTES8"
        case .byteArray8: "BYTEARRAY8"
        case .nextBuffer: "NEXT_BUFFER"
        case .readonlyBuffer: "READONLY_BUFFER"
        case .unicode: "UNICODE"
        case .shortBinUnicode: "SHORT_BINUNICODE"
        case .binUnicode: "BINUNICODE"
        case .binUnicode8: "BINUNICODE8"
        case .none: "NONE"
        case .newTrue: "NEWTRUE"
        case .newFalse: "NEWFALSE"
        case .float: "FLOAT"
        case .binFloat: "BINFLOAT"
        case .emptyList: "EMPTY_LIST"
        case .append: "APPEND"
        case .appends: "APPENDS"
        case .list: "LIST"
        case .emptyTuple: "EMPTY_TUPLE"
        case .tuple: "TUPLE"
        case .tuple1: "TUPLE1"
        case .tuple2: "TUPLE2"
        case .tuple3: "TUPLE3"
        case .emptyDict: "EMPTY_DICT"
        case .dict: "DICT"
        case .setItem: "SETITEM"
        case .setItems: "SETITEMS"
        case .emptySet: "EMPTY_SET"
        case .addItems: "ADDITEMS"
        case .frozenSet: "FROZENSET"
        case .pop: "POP"
        case .dup: "DUP"
        case .mark: "MARK"
        case .popMark: "POP_MARK"
        case .get: "GET"
        case .binGet: "BINGET"
        case .longBinGet: "LONG_BINGET"
        case .put: "PUT"
        case .binPut: "BINPUT"
        case .longBinPut: "LONG_BINPUT"
        case .memoize: "MEMOIZE"
        case .ext1: "EXT1"
        case .ext2: "EXT2"
        case .ext4: "EXT4"
        case .global: "GLOBAL"
        case .stackGlobal: "STACK_GLOBAL"
        case .reduce: "REDUCE"
        case .build: "BUILD"
        case .inst: "INST"
        case .obj: "OBJ"
        case .newObj: "NEWOBJ"
        case .newObjEx: "NEWOBJ_EX"
        case .proto: "PROTO"
        case .stop: "STOP"
        case .frame: "FRAME"
        case .persID: "PERSID"
        case .binPersID: "BINPERSID"
        }
    }
}
