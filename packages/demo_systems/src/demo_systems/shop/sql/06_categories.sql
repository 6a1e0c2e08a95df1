CREATE TABLE categories AS
WITH c AS (
    SELECT range + 1 AS category_id,
           CASE WHEN range < $n_top THEN NULL
                ELSE ri(range, 'parent', 1, $n_top) END AS parent_id
    FROM range($n_categories)
), named AS (
    SELECT c.*,
           CASE WHEN parent_id IS NULL
                THEN $category_names[1 + (category_id - 1) % len($category_names)]
                     || CASE WHEN category_id > len($category_names)
                             THEN ' ' || category_id ELSE '' END
                ELSE pick($sub_words, category_id, 'cat-sub') || ' '
                     || pick($nouns, category_id, 'cat-noun') || 's ' || category_id
           END AS name
    FROM c
)
SELECT category_id, parent_id, name,
       lower(replace(name, ' ', '-')) AS slug,
       CASE WHEN parent_id IS NULL THEN 1 ELSE 2 END AS depth,
       CAST(15 + 40 * u(category_id, 'margin') AS DECIMAL(5, 2)) AS target_margin_pct
FROM named
ORDER BY category_id
