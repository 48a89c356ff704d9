# Cross-building libkiln_runtime and the examples for 64-bit Arm Linux with Debian's
# g++-aarch64-linux-gnu (sysroot: libc6-arm64-cross). Used with -DKILN_RUNTIME_ONLY=ON:
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DKILN_RUNTIME_ONLY=ON && ninja -C build-aarch64
# Run the results with qemu-aarch64-static -L /usr/aarch64-linux-gnu (tests/aot/aarch64_test.py).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
