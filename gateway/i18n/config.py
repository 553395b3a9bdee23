"""`vigil config check` and the configuration's owners: problems a person fixes in the YAML."""

TEXT: dict[str, dict[str, str]] = {
    "config.secret_unset": {
        "zh": "环境变量 {var} 未设置：{what} 的密码/密钥需放在该变量中",
        "en": "environment variable {var} is not set: it must hold the {what}'s password or secret",
    },
    "config.yaml_syntax": {
        "zh": "YAML 语法错误：{problem}",
        "en": "not valid YAML: {problem}",
    },
}
