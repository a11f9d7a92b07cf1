//! Enumeration of every maximal layout: placed layouts to which no further instance fits.

use super::{Layout, PlacedInstance};
use crate::catalog::{GiProfile, GpuModel};

/// Which layouts [`enumerate`] lists.
#[derive(Debug, Clone, Default)]
pub struct EnumerateOptions<'g> {
    /// Profiles that may be used; [`GpuModel::default_profiles`] when `None`. A variant (`+me`, `+gfx`, `-me`,
    /// `+me.all`) is the same slices as its plain twin with other engines, so listing it by
    /// default would only repeat every layout that holds the twin; name it to include it.
    pub profiles: Option<Vec<&'g GiProfile>>,
    /// Keep only layouts that leave no compute and no memory slice unused.
    pub full_only: bool,
}

/// Lists every maximal placed layout of `gpu`, best first (see [`rank`]).
///
/// Maximal means that no allowed profile fits anywhere in what is left, given each profile's
/// placements, its instance count and the compute slices still free. Layouts differ by placement:
/// `2g+1g+1g+3g` and `1g+1g+2g+3g` are two layouts, as in NVIDIA's table of configurations.
pub fn enumerate<'g>(gpu: &'g GpuModel, options: &EnumerateOptions<'g>) -> Vec<Layout<'g>> {
    let allowed: Vec<&GiProfile> = match &options.profiles {
        Some(list) => list.clone(),
        None => gpu.default_profiles(),
    };
    let mut search = Search {
        gpu,
        allowed: &allowed,
        chosen: Vec::new(),
        found: Vec::new(),
    };
    search.walk(0, 0, 0);
    let mut layouts: Vec<Layout> = search
        .found
        .into_iter()
        .map(|instances| Layout { gpu, instances })
        .filter(|l| !options.full_only || l.figures().slices_unused() == 0)
        .collect();
    rank(&mut layouts);
    layouts
}

/// Orders layouts best first: fewest compute slices unused, then fewest memory slices unused,
/// then most SMs, then most memory, then fewest (so larger) instances; ties by the layout text so
/// the order is stable.
pub fn rank(layouts: &mut [Layout]) {
    layouts.sort_by_cached_key(|l| {
        let f = l.figures();
        (
            f.compute_slices_unused,
            f.memory_slices_unused,
            std::cmp::Reverse(f.sm_available),
            std::cmp::Reverse((f.memory_gib_available * 100.0).round() as u64),
            l.instances.len(),
            l.to_string(),
        )
    });
}

struct Search<'a, 'g> {
    gpu: &'g GpuModel,
    allowed: &'a [&'g GiProfile],
    chosen: Vec<PlacedInstance<'g>>,
    found: Vec<Vec<PlacedInstance<'g>>>,
}

impl<'g> Search<'_, 'g> {
    /// Decides memory slice `slice` onwards: either an instance starts there or the slice stays
    /// free. Deciding slices in order yields each placed layout exactly once.
    fn walk(&mut self, slice: u8, used: u16, compute: u8) {
        if slice == self.gpu.memory_slices {
            if self.is_maximal(used, compute) {
                self.found.push(self.chosen.clone());
            }
            return;
        }
        if used & (1 << slice) != 0 {
            return self.walk(slice + 1, used, compute);
        }
        for &profile in self.allowed {
            if profile.placements.contains(&slice) && self.fits(profile, slice, used, compute) {
                self.chosen.push(PlacedInstance {
                    profile,
                    start: slice,
                    compute: vec![profile.default_compute()],
                });
                self.walk(
                    slice + 1,
                    used | profile.mask_at(slice),
                    compute + profile.compute_slices,
                );
                self.chosen.pop();
            }
        }
        self.walk(slice + 1, used, compute);
    }

    fn fits(&self, profile: &GiProfile, start: u8, used: u16, compute: u8) -> bool {
        let count = self
            .chosen
            .iter()
            .filter(|i| i.profile.id == profile.id)
            .count();
        let media_conflict = self
            .chosen
            .iter()
            .any(|i| i.profile.media_conflict(profile).is_some());
        used & profile.mask_at(start) == 0
            && count < usize::from(profile.instances)
            && compute + profile.compute_slices <= self.gpu.compute_slices
            && !media_conflict
    }

    fn is_maximal(&self, used: u16, compute: u8) -> bool {
        !self
            .allowed
            .iter()
            .any(|p| p.placements.iter().any(|&s| self.fits(p, s, used, compute)))
    }
}
