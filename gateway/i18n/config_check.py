"""`vigil config check`'s own words: ``check.*`` (the problems it finds in a YAML file and its summary).
Problems the schema words with a translation key (stream addresses, secrets) come from their tables."""

TEXT: dict[str, dict[str, str]] = {
    "check.file_not_found": {
        "zh": "文件不存在；请用 --config FILE 指定或设置 VIGIL_CONFIG",
        "en": "file not found; pass --config FILE or set VIGIL_CONFIG",
    },
    "check.top_level": {
        "zh": "顶层须为各配置段的映射（site、database 等）",
        "en": "the top level must be a mapping of sections (site, database, ...)",
    },
    "check.missing": {"zh": "缺少必填字段", "en": "required field is missing"},
    "check.unknown_field": {
        "zh": "未知字段（请检查拼写；`vigil config schema` 列出所有字段）",
        "en": "unknown field (check the spelling; `vigil config schema` lists the fields)",
    },
    "check.int": {"zh": "须为整数", "en": "Input should be a valid integer"},
    "check.number": {"zh": "须为数字", "en": "Input should be a valid number"},
    "check.bool": {"zh": "须为 true 或 false", "en": "Input should be a valid boolean"},
    "check.text": {"zh": "须为文本", "en": "Input should be a valid string"},
    "check.list": {"zh": "须为列表", "en": "Input should be a valid list"},
    "check.mapping": {"zh": "须为映射（键: 值）", "en": "Input should be a valid dictionary"},
    "check.one_of": {"zh": "须为以下之一：{expected}", "en": "Input should be {expected}"},
    "check.ge": {"zh": "须大于或等于 {ge}", "en": "Input should be greater than or equal to {ge}"},
    "check.gt": {"zh": "须大于 {gt}", "en": "Input should be greater than {gt}"},
    "check.le": {"zh": "须小于或等于 {le}", "en": "Input should be less than or equal to {le}"},
    "check.lt": {"zh": "须小于 {lt}", "en": "Input should be less than {lt}"},
    "check.too_short": {
        "zh": "至少需要 {min_length} 个字符",
        "en": "String should have at least {min_length} characters",
    },
    "check.too_long": {
        "zh": "最多 {max_length} 个字符",
        "en": "String should have at most {max_length} characters",
    },
    "check.unknown_scene": {
        "zh": "未知场景“{scene}”；可用场景：{known}",
        "en": "unknown scene '{scene}'; known scenes: {known}",
    },
    "check.unknown_param": {
        "zh": "场景“{scene}”没有此参数（其参数：{known}）",
        "en": "unknown parameter of scene '{scene}' (its parameters: {known})",
    },
    "check.needs_model": {
        "zh": "场景“{scene}”需要 `model`：它读取的检测模型名称",
        "en": "scene '{scene}' needs `model`: the name of the detector it reads",
    },
    "check.duplicate": {
        "zh": "{key} “{value}”重复（另见 {section}[{other}]）",
        "en": "duplicate {key} '{value}' (also {section}[{other}])",
    },
    "check.no_source": {
        "zh": "视频源“{source}”不在 `sources` 中",
        "en": "source '{source}' is not in `sources`",
    },
    "check.no_target": {
        "zh": "上报目标“{target}”不在 `uplink` 中",
        "en": "uplink target '{target}' is not in `uplink`",
    },
    "check.problems": {"zh": "{path}：发现 {count} 个问题：", "en": "{path}: {count} problem(s):"},
    "check.ok": {
        "zh": "{path}：正确（{cameras} 台摄像机，{scenes} 个场景任务，{targets} 个上报目标）",
        "en": "{path}: OK ({cameras} camera(s), {scenes} scene task(s), {targets} uplink target(s))",
    },
}

# pydantic's error type -> the key above that words it (its ctx gives the parameters)
PYDANTIC_TYPES: dict[str, str] = {
    "missing": "check.missing",
    "extra_forbidden": "check.unknown_field",
    "int_parsing": "check.int",
    "int_type": "check.int",
    "int_from_float": "check.int",
    "float_parsing": "check.number",
    "float_type": "check.number",
    "bool_parsing": "check.bool",
    "bool_type": "check.bool",
    "string_type": "check.text",
    "list_type": "check.list",
    "dict_type": "check.mapping",
    "literal_error": "check.one_of",
    "enum": "check.one_of",
    "greater_than_equal": "check.ge",
    "greater_than": "check.gt",
    "less_than_equal": "check.le",
    "less_than": "check.lt",
    "string_too_short": "check.too_short",
    "string_too_long": "check.too_long",
}
