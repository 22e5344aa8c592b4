import BEATsCore
