//! A global allocator that forwards to the system one and, inside [`watch`], records the largest
//! single allocation request made by the watching thread. The targets use it to prove that a
//! header announcing a huge length makes nothing allocate that much.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // `const` initialisers without destructors: touching them never allocates.
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// See the module documentation.
pub struct Watching;

fn record(size: usize) {
    if WATCHING.with(Cell::get) {
        LARGEST.with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// extra work is updating two thread-local `Cell`s, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as for `dealloc`; `new_size` is the caller's, valid per `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Run `f`, returning its result and the largest allocation (in bytes) it requested on this
/// thread. Nested calls are not supported (the inner one would end the watch).
pub fn watch<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    WATCHING.with(|w| w.set(true));
    let result = f();
    WATCHING.with(|w| w.set(false));
    (result, LARGEST.with(Cell::get))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sees_the_largest_allocation() {
        let (v, largest) = super::watch(|| Vec::<u8>::with_capacity(12345));
        assert_eq!((v.capacity(), largest), (12345, 12345));
        let ((), largest) = super::watch(|| {});
        assert_eq!(largest, 0);
    }
}
