# One precompiled <torch/torch.h> for every target that links libtorch.
#
# Parsing libtorch's headers costs ~30 s per translation unit on the CI
# machine (2 cores); the project has ~100 such units. Each torch-using target
# reuses a single PCH built once from cmake/torch_pch.cc. GCC silently falls
# back to the textual header if a PCH does not match a target's flags, so the
# PCH changes speed, never meaning.
add_library(romed_torch_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/torch_pch.cc)
target_link_libraries(romed_torch_pch PRIVATE romed_torch romed_warnings)
target_precompile_headers(romed_torch_pch PRIVATE <torch/torch.h>)

# Collects every buildsystem target below `dir`.
function(romed_collect_targets dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    romed_collect_targets(${sub} sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Applies the PCH to every compiled target that links romed_torch, directly or
# through another project target (fixpoint over direct LINK_LIBRARIES).
function(romed_apply_torch_pch)
  romed_collect_targets(${CMAKE_SOURCE_DIR} all)
  set(torch_users romed_torch)
  set(changed TRUE)
  while(changed)
    set(changed FALSE)
    foreach(t ${all})
      if(t IN_LIST torch_users)
        continue()
      endif()
      get_target_property(libs ${t} LINK_LIBRARIES)
      get_target_property(ilibs ${t} INTERFACE_LINK_LIBRARIES)
      foreach(l ${libs} ${ilibs})
        if(l IN_LIST torch_users)
          list(APPEND torch_users ${t})
          set(changed TRUE)
          break()
        endif()
      endforeach()
    endforeach()
  endwhile()
  foreach(t ${torch_users})
    if(NOT TARGET ${t} OR t STREQUAL "romed_torch_pch")
      continue()
    endif()
    get_target_property(type ${t} TYPE)
    get_target_property(srcs ${t} SOURCES)
    if(type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY)$" AND srcs)
      target_precompile_headers(${t} REUSE_FROM romed_torch_pch)
    endif()
  endforeach()
endfunction()
