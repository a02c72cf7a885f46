// Pieces shared by several views.
import { api } from "../api.js";
import { h } from "../dom.js";

/** A <select> of the galleries, preselecting `wanted` or the last one used in this tab. */
export async function gallerySelect(wanted) {
  const { galleries } = await api("/galleries");
  const last = wanted || sessionStorage.getItem("marginface.gallery");
  const select = h("select", { required: true },
    galleries.map((g) => h("option", { value: g.name, selected: g.name === last }, g.name)));
  select.addEventListener("change", () => sessionStorage.setItem("marginface.gallery", select.value));
  return { select, count: galleries.length };
}

export const REASONS = {
  no_face: "no face found",
  multiple_faces: "several faces of similar size: use a photo of one person",
  too_small: "the face is too small",
  bad_image: "not a readable image",
};
