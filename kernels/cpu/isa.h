// Which instruction set the CPU kernels use. Detected once from the CPU;
// lowered on request (BRISK_ISA=scalar|avx2|avx512 in the environment, or
// set_isa) so tests can run the AVX2 path on an AVX-512 machine and the
// portable scalar path anywhere. Never raised above what the CPU has.
#pragma once

namespace brisk::cpu {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
Isa detected_isa();  // what this CPU supports (AVX2 needs FMA+F16C; AVX-512 needs F/BW/VL/VNNI/BF16)
Isa active_isa();    // what the kernels use now
// Returns the ISA actually set: min(requested, detected).
Isa set_isa(Isa requested);

}  // namespace brisk::cpu
