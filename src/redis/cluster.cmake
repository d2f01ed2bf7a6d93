# Redis Cluster support: key slots, the slot map, redirections and the sharded layout.
# A static library of its own until the Redis store (src/redis/CMakeLists.txt) links it.
find_path(HIREDIS_INCLUDE_DIR hiredis/hiredis.h)
find_library(HIREDIS_LIBRARY hiredis)
if(NOT HIREDIS_INCLUDE_DIR OR NOT HIREDIS_LIBRARY)
  message(FATAL_ERROR "hiredis not found (Debian: apt-get install libhiredis-dev)")
endif()
if(NOT TARGET hiredis::hiredis)
  add_library(hiredis::hiredis UNKNOWN IMPORTED GLOBAL)
  set_target_properties(hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${HIREDIS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIR}")
endif()

add_library(kvdex_redis_cluster STATIC
  ${CMAKE_CURRENT_LIST_DIR}/hash_slot.cc
  ${CMAKE_CURRENT_LIST_DIR}/cluster_slot_map.cc
  ${CMAKE_CURRENT_LIST_DIR}/sharded_layout.cc)
target_compile_features(kvdex_redis_cluster PRIVATE cxx_std_20)
target_include_directories(kvdex_redis_cluster PUBLIC ${PROJECT_SOURCE_DIR}/src
  PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
target_link_libraries(kvdex_redis_cluster PUBLIC hiredis::hiredis kvdex::kvdex PRIVATE kvdex_warnings)
