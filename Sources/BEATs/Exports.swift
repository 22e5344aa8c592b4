// The vocabulary an app meets through `import BEATs` alone: model kinds, configs, labels and
// the weight-store protocol (BEATsCore), and the audio clip and errors of the runtime. The
// stages underneath (BEATsCheckpoint, BEATsFormat, BEATsRuntime) stay importable on their own.
@_exported import BEATsCore
@_exported import struct BEATsRuntime.AudioClip
@_exported import enum BEATsRuntime.AudioError
@_exported import enum BEATsRuntime.BEATsAudio
@_exported import enum BEATsRuntime.ModelError
@_exported import struct BEATsRuntime.StageTime
@_exported import class BEATsRuntime.AudioDecoder
