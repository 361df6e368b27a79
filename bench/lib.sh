# Shared by the bench/ scripts (sourced).
#
# write_section MARK SECTION_FILE OUTPUT: puts SECTION_FILE (which starts
# with "<!-- MARK:begin" and ends with "<!-- MARK:end -->") into OUTPUT in
# place of the old section between those markers, or appends it; OUTPUT "-"
# prints it instead.
write_section() {
	local mark=$1 section=$2 output=$3
	if [ "$output" = - ]; then
		cat "$section"
		return 0
	fi
	touch "$output" || return 1
	if grep -q "<!-- $mark:begin" "$output"; then
		awk -v f="$section" -v b="<!-- $mark:begin" -v e="<!-- $mark:end" '
			index($0, b) == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
			index($0, e) == 1 { skip = 0; next }
			!skip { print }' "$output" >"$section.out" && cat "$section.out" >"$output"
	else
		{ echo; cat "$section"; } >>"$output"
	fi
}
