//! The process's memory allocator: mimalloc for the many small, short-lived buffers of a
//! request (glibc's allocator spent about a tenth of rectus's CPU under load on those), and
//! the system allocator for huge blocks. A password hash takes 64 MiB (Directus's argon2
//! parameters); mimalloc keeps such a block in the heap of the thread that freed it until
//! that thread allocates again, while the system allocator unmaps it at once, so resident
//! memory under load stays what the requests need.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this size or more go to the system allocator.
const HUGE: usize = 4 << 20;

pub struct Allocator;

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE
}

// SAFETY: every block is freed by the allocator that made it: the choice depends only on
// the layout's size, which `dealloc` and `realloc` receive unchanged from the caller.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe {
            match is_huge(layout) {
                true => System.alloc(layout),
                false => MiMalloc.alloc(layout),
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            match is_huge(layout) {
                true => System.alloc_zeroed(layout),
                false => MiMalloc.alloc_zeroed(layout),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout, so from the same allocator.
        unsafe {
            match is_huge(layout) {
                true => System.dealloc(ptr, layout),
                false => MiMalloc.dealloc(ptr, layout),
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr`/`layout` describe a live block and that
        // `new_size` with `layout.align()` is a valid layout.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            match (is_huge(layout), is_huge(new_layout)) {
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                (true, true) => System.realloc(ptr, layout, new_size),
                // The block changes allocator: copy it over.
                _ => {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_move_between_allocators_intact() {
        let a = Allocator;
        for (from, to) in [(64, HUGE + 1), (HUGE + 1, 64), (64, 128), (HUGE, HUGE * 2)] {
            let layout = Layout::from_size_align(from, 8).unwrap();
            // SAFETY: a fresh block of `from` bytes, written and read within its bounds,
            // resized once and freed with its final layout.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                for i in 0..from.min(to) {
                    *p.add(i) = (i % 251) as u8;
                }
                let q = a.realloc(p, layout, to);
                assert!(!q.is_null());
                for i in 0..from.min(to) {
                    assert_eq!(*q.add(i), (i % 251) as u8, "byte {i} of {from} -> {to}");
                }
                a.dealloc(q, Layout::from_size_align(to, 8).unwrap());
            }
        }
    }
}
