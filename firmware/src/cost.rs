//! What a stage of a frame costs: wall time and heap allocations.
//!
//! Allocations are counted by [`CountingAllocator`], which a binary installs as its global
//! allocator (the `faceunlock` binary and the allocation tests do); where it is not installed
//! every count reads 0.
//!
//! ```
//! use faceunlock::cost::Meter;
//! let meter = Meter::start();
//! let v: Vec<u8> = Vec::with_capacity(64);
//! let cost = meter.stop();
//! assert!(cost.time.as_secs() < 60 && v.capacity() >= 64);
//! ```

use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting every allocation and reallocation (all threads together).
pub struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap allocations made so far by the whole process (0 without [`CountingAllocator`]).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Time and heap allocations spent in one stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    pub time: Duration,
    pub allocations: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost { time: self.time + other.time, allocations: self.allocations + other.allocations }
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(costs: I) -> Cost {
        costs.fold(Cost::default(), |a, b| a + b)
    }
}

/// Measures the [`Cost`] of what runs between [`Meter::start`] and [`Meter::stop`].
pub struct Meter {
    started: Instant,
    allocations: u64,
}

impl Meter {
    pub fn start() -> Self {
        Self { allocations: allocations(), started: Instant::now() }
    }

    pub fn stop(self) -> Cost {
        let time = self.started.elapsed();
        Cost { time, allocations: allocations() - self.allocations }
    }
}
